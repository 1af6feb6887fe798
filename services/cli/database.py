"""``backstop db``: schema migrations."""

from __future__ import annotations

import typer

from shared.config import BaseServiceSettings
from shared.db import upgrade as upgrade_schema

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command()
def upgrade() -> None:
    """Apply every pending migration (``backstop up`` does this by itself)."""
    url = BaseServiceSettings().sqlalchemy_url()
    upgrade_schema(url)
    typer.echo("database schema is up to date")
