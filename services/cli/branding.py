"""``backstop branding``: how a reseller's alert e-mails look (MSPs send under their name)."""

from __future__ import annotations

import json

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing
from services.notifier import admin

app = typer.Typer(no_args_is_help=True, help="Per-reseller e-mail branding.")


@app.command("set")
def set_brand(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    name: str = typer.Option(None, help="Name shown as sender and in mails."),
    sender: str = typer.Option(None, help="Sender address (From)."),
    logo_url: str = typer.Option(None, help="Logo shown in HTML mails."),
    footer: str = typer.Option(None, help="Footer line of every mail."),
) -> None:
    """Set branding fields; omitted ones stay, an empty string clears one."""
    with refusing(admin.ConfigError), database().session() as session:
        admin.set_brand(session, reseller, name=name, sender=sender, logo_url=logo_url,
                        footer=footer)
    typer.echo("branding saved")


@app.command()
def show(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Show a reseller's branding (empty fields use the defaults)."""
    with refusing(admin.ConfigError), database().session() as session:
        row = admin.get_brand(session, reseller)
    out = {"reseller_id": row.reseller_id, "name": row.name, "sender": row.sender,
           "logo_url": row.logo_url, "footer": row.footer}
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(tables.render([{"field": k, "value": v} for k, v in out.items()],
                                 ["field", "value"]))
