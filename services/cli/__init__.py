"""The ``backstop`` command line: one root app; each concern adds its own sub-commands."""

from __future__ import annotations

import typer

from services.cli import (
    accounts,
    branding,
    database,
    notifications,
    runner,
    secret_keys,
    settings,
    thresholds,
    tokens,
    webhooks,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Backstop backup monitoring.")
app.command("up")(runner.up)
app.command("run")(runner.run)
app.command("settings")(settings.show)
app.add_typer(database.app, name="db")
app.add_typer(accounts.app, name="accounts")
app.add_typer(tokens.app, name="tokens")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(notifications.app, name="notifications")
app.add_typer(branding.app, name="branding")
app.add_typer(thresholds.app, name="thresholds")
app.add_typer(secret_keys.app, name="secrets")
