"""``backstop branding``: how a reseller's alert e-mails look (MSPs send under their name)."""

from __future__ import annotations

import json

import typer

from services.cli import tables
from services.cli.accounts import database
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
    try:
        with database().session() as session:
            admin.set_brand(session, reseller, name=name, sender=sender, logo_url=logo_url,
                            footer=footer)
    except admin.ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("branding saved")


@app.command()
def show(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a reseller's branding (empty fields use the defaults)."""
    try:
        with database().session() as session:
            row = admin.get_brand(session, reseller)
    except admin.ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    out = {"reseller_id": row.reseller_id, "name": row.name, "sender": row.sender,
           "logo_url": row.logo_url, "footer": row.footer}
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(tables.render([{"field": k, "value": v} for k, v in out.items()],
                                 ["field", "value"]))
