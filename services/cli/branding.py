"""``backstop branding``: how a reseller's alert e-mails look (MSPs send under their name)."""

from __future__ import annotations

import json

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing
from services.notifier import admin
from services.portal import admin as portal_admin

app = typer.Typer(no_args_is_help=True, help="Per-reseller e-mail branding.")


@app.command("set")
def set_brand(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    name: str = typer.Option(None, help="Name shown as sender and in mails."),
    sender: str = typer.Option(None, help="Sender address (From)."),
    logo_url: str = typer.Option(None, help="Logo shown in HTML mails."),
    footer: str = typer.Option(None, help="Footer line of every mail."),
    colour: str = typer.Option(None, help="Colour of the portal's header, #rrggbb (text on it "
                               "is white or black, whichever reads better)."),
) -> None:
    """Set branding fields; omitted ones stay, an empty string clears one. The name and logo
    show in e-mails and in the portal (for the reseller's users and customers)."""
    with refusing(admin.ConfigError, portal_admin.ConfigError), \
            database().session() as session:
        admin.set_brand(session, reseller, name=name, sender=sender, logo_url=logo_url,
                        footer=footer)
        if colour is not None:
            portal_admin.set_colour(session, reseller, colour or None)
    typer.echo("branding saved")


@app.command()
def show(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Show a reseller's branding (empty fields use the defaults)."""
    with refusing(admin.ConfigError), database().session() as session:
        row = admin.get_brand(session, reseller)
        colour = portal_admin.colour_of(session, row.reseller_id)
    out = {"reseller_id": row.reseller_id, "name": row.name, "sender": row.sender,
           "logo_url": row.logo_url, "footer": row.footer, "colour": colour}
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(tables.render([{"field": k, "value": v} for k, v in out.items()],
                                 ["field", "value"]))
