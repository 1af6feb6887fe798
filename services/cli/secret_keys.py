"""``backstop secrets``: the keys that seal webhook secrets at rest, and their rotation."""

from __future__ import annotations

import typer

from services.cli.common import database, refusing
from services.notifier import admin
from shared.config import BaseServiceSettings
from shared.secretbox import SecretKeyMissing, SecretUnreadable, new_key, secret_box

app = typer.Typer(no_args_is_help=True, help="Keys sealing stored webhook secrets.")


@app.command("new-key")
def new_key_command() -> None:
    """Print a new key for BACKSTOP_SECRET_KEYS (or a line of the key file)."""
    typer.echo(new_key())


@app.command()
def rotate() -> None:
    """Seal every stored secret with the first key; afterwards the other keys can go.

    Rotation: put the new key first in BACKSTOP_SECRET_KEYS (`new,old`) on every service and
    restart them, run this, then remove the old key and restart again."""
    with refusing(SecretKeyMissing, SecretUnreadable, ValueError):
        keys = secret_box(BaseServiceSettings())
        with database().session() as session:
            count = admin.reseal_secrets(session, keys)
    typer.echo(f"{count} secrets sealed with the first key")
