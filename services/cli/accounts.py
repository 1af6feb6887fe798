"""``backstop accounts``: create and list accounts along reseller → customer → account."""

from __future__ import annotations

import dataclasses
import getpass
import json

import typer
from sqlmodel import col, select

from services.cli import tables
from services.cli.common import (
    JSON_OBJECT,
    choice,
    database,
    fail,
    refusing,
    warn_if_contacts_unused,
)
from services.notifier.recipients.preferences import (
    AccountPreferences,
    Change,
    Preferences,
    PreferencesError,
)
from shared.config import DirectorySettings
from shared.directory import DirectoryError
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


@app.command()
def preferences(
    account: str = typer.Argument(..., help="Account id."),
    warning: str = typer.Option(None, help="Warn the customer side at all: on or off."),
    medium: str = typer.Option(None, help="Notification medium, e.g. mail (directory only)."),
    mail: list[str] = typer.Option(None, help="The account's own e-mail address; repeat for "
                                   "several (replaces them all)."),
    clear_mails: bool = typer.Option(False, "--clear-mails", help="Remove every address."),
    quota_percent: float = typer.Option(None, help="The account's quota threshold in percent."),
    clear_quota_percent: bool = typer.Option(
        False, "--clear-quota-percent", help="Drop the account's own threshold (inherited again)."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Show an account's notification preferences (warning on/off, medium, mail addresses, quota
    threshold) or change them: in its LDAP entry when BACKSTOP_LDAP_URL is set (with
    BACKSTOP_LDAP_WRITE_BIND_DN), else in the database. Each change is logged with who made it."""
    if mail and clear_mails:
        raise fail("give --mail or --clear-mails, not both")
    choice(warning, ("on", "off"), "--warning")
    change = Change(
        warning_on=None if warning is None else warning == "on", medium=medium,
        mails=[] if clear_mails else (list(mail) if mail else None),
        quota_percent=quota_percent, clear_quota_percent=clear_quota_percent)
    store = AccountPreferences(database(), DirectorySettings())
    try:
        with refusing(PreferencesError, TenancyError, DirectoryError):
            found = (store.read(account) if change.is_empty()
                     else store.change(account, change, actor=f"cli:{getpass.getuser()}"))
    finally:
        store.close()
    _show_preferences(found, as_json=as_json)


def _show_preferences(found: Preferences, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**dataclasses.asdict(found), "quota_masked": found.quota_masked}))
        return
    flag = {True: "on", False: "off", None: "not set" if found.source == "directory"
            else "not kept (database)"}[found.warning_on]
    rows = [
        {"preference": "source", "value": found.source + ("" if found.writable
                                                          else " (read-only)")},
        {"preference": "entry", "value": found.entry_dn or "-"},
        {"preference": "warning", "value": flag},
        {"preference": "medium", "value": found.medium or "-"},
        {"preference": "mails", "value": ", ".join(found.mails) or "-"},
        {"preference": "told now", "value": ", ".join(found.recipients) or "nobody"},
        {"preference": "quota_percent (own)", "value": "-" if found.quota_percent is None
         else f"{found.quota_percent:g}"},
        {"preference": "quota_percent in force",
         "value": f"{found.quota_percent_in_force:g} (from {found.quota_percent_from})"},
    ]
    typer.echo(tables.render(rows, ["preference", "value"]))
    if found.quota_masked:
        typer.echo("warning: an operator's per-account threshold (`backstop thresholds set "
                   "quota_percent … --account …`) beats the account's own value", err=True)
