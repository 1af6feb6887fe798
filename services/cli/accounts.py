"""``backstop accounts``: create and list accounts along reseller → customer → account."""

from __future__ import annotations

import json

import typer
from sqlmodel import col, select

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing, warn_if_contacts_unused
from shared.tenancy import Account, Customer, Reseller, TenancyError, create_account

app = typer.Typer(no_args_is_help=True, help="Accounts and their credentials.")


@app.command()
def create(
    reseller: str = typer.Option(..., help="Reseller name (created when missing)."),
    customer: str = typer.Option(..., help="Customer name (created when missing)."),
    name: str = typer.Option(..., help="Account name, unique within the customer."),
    email: list[str] = typer.Option([], help="Contact e-mail; repeat for several."),
    quota_bytes: int = typer.Option(None, help="Storage quota in bytes."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Create an account and print its API token and ping key (shown this once only)."""
    db = database()
    with refusing(TenancyError), db.session() as session:
        issued = create_account(
            session, reseller=reseller, customer=customer, name=name,
            contacts=email, quota_bytes=quota_bytes,
        )
    warn_if_contacts_unused(email)
    out = {
        "account_id": issued.account.id, "customer_id": issued.customer.id,
        "reseller_id": issued.reseller.id, "name": name, "contacts": email,
        "token": issued.token, "ping_key": issued.ping_key,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    for key, value in out.items():
        typer.echo(f"{key:12} {value}")
    typer.echo("\nThe token and ping key are shown only now; store them in the backup client.")


@app.command("list")
def list_accounts(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """List accounts with their reseller and customer."""
    db = database()
    with db.session() as session:
        rows = session.exec(
            select(Account, Customer, Reseller)
            .join(Customer, col(Customer.id) == Account.customer_id)
            .join(Reseller, col(Reseller.id) == Account.reseller_id)
            .order_by(Reseller.name, Customer.name, Account.name)
        ).all()
    listing = [{
        "account_id": account.id, "reseller": reseller.name, "customer": customer.name,
        "name": account.name, "contacts": account.contacts, "quota_bytes": account.quota_bytes,
    } for account, customer, reseller in rows]
    tables.emit(tables.Page.cut(listing, limit, offset),
                ["account_id", "reseller", "customer", "name", "contacts", "quota_bytes"],
                as_json=as_json)
