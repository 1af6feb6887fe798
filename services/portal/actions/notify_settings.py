"""The notifier's settings a portal user may see and change: webhook endpoints, the addresses
always told (contacts), and the reseller's branding. Reads are scoped in the query; changes go
through the notifier's admin facade.

* reseller-wide endpoints and contacts, and branding: reseller staff and operators;
* a customer's endpoints and contacts: also that customer's users;
* read-only users: nothing.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from services.notifier import admin
from services.notifier.admin import NewEndpoint
from services.notifier.channels.targets import TargetPolicy
from services.notifier.tables import BrandRow, NotifySettings, WebhookEndpoint
from services.portal.rights import Editor, Invalid, NotFound, Role
from shared.db import core_table
from shared.scopes import Scope
from shared.secretbox import SecretBox
from shared.tenancy import Customer, Reseller

log = logging.getLogger("backstop.audit")
CUSTOMERS = core_table(Customer)


def _lowest(customer_id: str | None) -> Role:
    return Role.reseller if customer_id is None else Role.customer


def webhooks(session: Session, scope: Scope) -> list[WebhookEndpoint]:
    """Enabled endpoints in scope, oldest first; a customer user sees their customer's only."""
    query = select(WebhookEndpoint).where(col(WebhookEndpoint.enabled)).order_by(
        col(WebhookEndpoint.created_at))
    if scope.reseller_id is not None:
        query = query.where(WebhookEndpoint.reseller_id == scope.reseller_id)
    if scope.customer_id is not None:
        query = query.where(WebhookEndpoint.customer_id == scope.customer_id)
    return list(session.exec(query).all())


def _customer(session: Session, scope: Scope, reseller_id: str, customer_id: str) -> Customer:
    customer = session.exec(select(Customer).where(
        Customer.id == customer_id, Customer.reseller_id == reseller_id,
        scope.where(CUSTOMERS.c.reseller_id, CUSTOMERS.c.id))).first()
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer


def _reseller(session: Session, editor: Editor, reseller_id: str) -> Reseller:
    row = session.get(Reseller, reseller_id)
    if row is None or editor.scope.reseller_id not in (None, reseller_id):
        raise NotFound(f"no reseller {reseller_id!r}")
    return row


def add_webhook(session: Session, editor: Editor, *, reseller_id: str,
                customer_id: str | None, url: str, fmt: str, secret: str | None,
                keys: SecretBox, targets: TargetPolicy) -> NewEndpoint:
    _reseller(session, editor, reseller_id)
    if customer_id is not None:
        _customer(session, editor.scope, reseller_id, customer_id)
    editor.require(_lowest(customer_id), reseller_id, customer_id)
    try:
        new = admin.add_webhook(session, reseller=reseller_id, customer=customer_id,
                                url=url.strip(), fmt=fmt, secret=secret or None, keys=keys,
                                targets=targets)
    except admin.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("webhook added", extra={"actor": editor.actor, "endpoint_id": new.endpoint.id,
                                     "reseller_id": reseller_id, "customer_id": customer_id})
    return new


def remove_webhook(session: Session, editor: Editor, endpoint_id: str) -> None:
    row = session.exec(select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, col(WebhookEndpoint.enabled))).first()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    editor.require(_lowest(row.customer_id), row.reseller_id, row.customer_id)
    admin.remove_webhook(session, endpoint_id)
    log.info("webhook removed", extra={"actor": editor.actor, "endpoint_id": endpoint_id})


def contacts(session: Session, scope: Scope) -> list[NotifySettings]:
    """The reseller's and customers' always-told addresses in scope (a customer user: theirs)."""
    query = select(NotifySettings).order_by(col(NotifySettings.reseller_id),
                                            col(NotifySettings.customer_id))
    if scope.reseller_id is not None:
        query = query.where(NotifySettings.reseller_id == scope.reseller_id)
    if scope.customer_id is not None:
        query = query.where(NotifySettings.customer_id == scope.customer_id)
    return list(session.exec(query).all())


def set_contacts(session: Session, editor: Editor, *, reseller_id: str,
                 customer_id: str | None, emails: list[str]) -> NotifySettings:
    _reseller(session, editor, reseller_id)
    if customer_id is not None:
        _customer(session, editor.scope, reseller_id, customer_id)
    editor.require(_lowest(customer_id), reseller_id, customer_id)
    cleaned = [e.strip() for e in emails if e.strip()]
    try:
        row = admin.set_contacts(session, reseller_id, customer_id, cleaned)
    except admin.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("contacts set", extra={"actor": editor.actor, "reseller_id": reseller_id,
                                    "customer_id": customer_id, "count": len(row.contacts)})
    return row


def brand(session: Session, scope: Scope, reseller_id: str) -> BrandRow:
    """A reseller's branding as stored (empty fields use the defaults)."""
    if scope.reseller_id not in (None, reseller_id) or session.get(Reseller, reseller_id) is None:
        raise NotFound(f"no reseller {reseller_id!r}")
    return admin.get_brand(session, reseller_id)


def set_brand(session: Session, editor: Editor, reseller_id: str, *, name: str,
              sender: str, logo_url: str, footer: str) -> BrandRow:
    """Set every field (an empty one is cleared and the default applies)."""
    _reseller(session, editor, reseller_id)
    editor.require(Role.reseller, reseller_id)
    try:
        row = admin.set_brand(session, reseller_id, name=name.strip(), sender=sender.strip(),
                              logo_url=logo_url.strip(), footer=footer.strip())
    except admin.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("branding set", extra={"actor": editor.actor, "reseller_id": reseller_id})
    return row


def customers(session: Session, scope: Scope) -> list[Customer]:
    """The customers in scope, by name: what the forms offer."""
    return list(session.exec(select(Customer).where(
        scope.where(CUSTOMERS.c.reseller_id, CUSTOMERS.c.id)).order_by(
        col(Customer.name))).all())


def resellers(session: Session, scope: Scope) -> list[Reseller]:
    """The resellers whose own settings the scope reaches (none for a customer user)."""
    if scope.customer_id is not None:
        return []
    query = select(Reseller).order_by(col(Reseller.name))
    if scope.reseller_id is not None:
        query = query.where(Reseller.id == scope.reseller_id)
    return list(session.exec(query).all())
