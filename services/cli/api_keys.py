"""``backstop users api-key``: keys that let scripts read the portal's JSON API (``/api/v1/``) as
a user — the same accounts, jobs, runs, alerts and usage that user sees. Shown once, stored
hashed; revoked keys stop working at once."""

from __future__ import annotations

import json

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing
from services.portal import admin

app = typer.Typer(no_args_is_help=True, help="API keys for the portal's JSON API.")

COLUMNS = ["id", "user", "name", "hint", "created_at", "last_used_at", "revoked_at"]


@app.command()
def create(
    email: str = typer.Argument(..., help="The portal user the key acts as."),
    name: str = typer.Option(..., help="What the key is for (e.g. the script's name)."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Create a key and print it (shown this once only)."""
    with refusing(admin.ConfigError), database().session() as session:
        row = admin.create_api_key(session, email, name)
    if as_json:
        typer.echo(json.dumps(row, default=str))
        return
    typer.echo(f"id   {row['id']}")
    typer.echo(f"key  {row['key']}")
    typer.echo("\nThe key is shown only now. Send it as `Authorization: Bearer <key>` to "
               "/api/v1/ on the portal's port.")


@app.command("list")
def list_keys(
    user: str = typer.Option(None, help="Only this user's keys."),
    revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Keys (never the keys themselves: their first characters), oldest first."""
    with database().session() as session:
        rows = admin.list_api_keys(session, user, revoked)
    tables.emit(tables.Page.cut(rows, limit, offset), COLUMNS, as_json=as_json)


@app.command()
def revoke(key_id: str = typer.Argument(..., help="The key's id (see `list`).")) -> None:
    """Revoke a key: it stops working at once."""
    with refusing(admin.ConfigError), database().session() as session:
        admin.revoke_api_key(session, key_id)
    typer.echo(f"revoked {key_id}")
