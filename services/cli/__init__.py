"""The ``backstop`` command line: one root app; each concern adds its own sub-commands."""

from __future__ import annotations

import typer

from services.cli import (
    accounts,
    api_keys,
    branding,
    database,
    executor,
    jobs,
    notifications,
    plans,
    plugins,
    runner,
    runs,
    secret_keys,
    settings,
    thresholds,
    tokens,
    users,
    webhooks,
)

# Plain (click-style) help rather than rich panels: typer's rich panels show flags as `--json
# <bool>`, read option help as markup (eating `[…]`), and draw boxes into pipes. Set on the root
# app, it applies to every sub-command.
app = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Backstop backup monitoring. Every command reads its configuration from BACKSTOP_* "
    "environment variables (`backstop settings` lists them); commands that touch the database "
    "use BACKSTOP_DATABASE_URL, or SQLite in BACKSTOP_DATA_DIR (default ./var).",
)
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
app.add_typer(users.app, name="users")
users.app.add_typer(api_keys.app, name="api-key")
app.add_typer(jobs.app, name="jobs")
app.add_typer(runs.app, name="runs")
app.add_typer(plans.app, name="plans")
app.add_typer(plans.targets_app, name="targets")
app.add_typer(executor.app, name="executor")
app.add_typer(plugins.app, name="plugins")
