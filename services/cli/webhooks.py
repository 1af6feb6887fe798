"""``backstop webhooks``: ticket-system endpoints per reseller or customer."""

from __future__ import annotations

import json

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing
from services.notifier import admin
from services.notifier.formats import FORMATS
from services.notifier.targets import TargetPolicy
from shared.config import NotifierSettings
from shared.secretbox import SecretKeyMissing, secret_box

app = typer.Typer(no_args_is_help=True, help="Webhook endpoints for ticket systems.")


@app.command()
def add(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    customer: str = typer.Option(None, help="Customer name or id (default: all customers)."),
    url: str = typer.Option(..., help="Where to POST alerts (http or https)."),
    fmt: str = typer.Option("backstop", "--format", help=f"One of: {', '.join(FORMATS)}."),
    secret: str = typer.Option(
        None, help="backstop: signing secret (whsec_ + base64 of 24-64 random bytes; "
        "generated when omitted); pagerduty: the integration's routing key."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Add an endpoint; prints its id and, for the backstop format, a generated secret.

    Loopback, private, link-local and metadata addresses are refused unless their network is
    in BACKSTOP_WEBHOOK_ALLOW_NETWORKS; the secret is stored sealed (BACKSTOP_SECRET_KEYS)."""
    settings = NotifierSettings()
    with refusing(admin.ConfigError, SecretKeyMissing, ValueError):
        keys = secret_box(settings)
        targets = TargetPolicy.parse(settings.webhook_allow_networks)
        with database().session() as session:
            new = admin.add_webhook(session, reseller=reseller, customer=customer, url=url,
                                    fmt=fmt, secret=secret, keys=keys, targets=targets)
    e = new.endpoint
    out = {"id": e.id, "reseller_id": e.reseller_id, "customer_id": e.customer_id,
           "url": e.url, "format": e.format, "secret": new.generated_secret}
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"id      {e.id}")
    if new.generated_secret:
        typer.echo(f"secret  {new.generated_secret}")
        typer.echo("\nThe signing secret is shown only now; configure it in the receiver.")


@app.command("list")
def list_endpoints(
    as_json: bool = tables.JSON,
    all_: bool = typer.Option(False, "--all", help="Include removed endpoints."),
    limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """List endpoints, oldest first (secrets are never shown again)."""
    with database().session() as session:
        rows = admin.list_webhooks(session)
    listing = [{"id": e.id, "reseller_id": e.reseller_id, "customer_id": e.customer_id,
                "url": e.url, "format": e.format, "enabled": e.enabled}
               for e in rows if e.enabled or all_]
    tables.emit(tables.Page.cut(listing, limit, offset),
                ["id", "format", "reseller_id", "customer_id", "url", "enabled"],
                as_json=as_json)


@app.command()
def remove(endpoint_id: str = typer.Argument(..., help="Endpoint id.")) -> None:
    """Remove an endpoint: nothing more is sent to it (queued deliveries are dead-lettered)."""
    with refusing(admin.ConfigError), database().session() as session:
        admin.remove_webhook(session, endpoint_id)
    typer.echo(f"removed {endpoint_id}")
