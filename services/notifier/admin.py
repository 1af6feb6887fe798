"""Administration of the notifier's configuration: webhook endpoints, brands, contacts, repeat
intervals, and queries for the operator (status of an alert, dead letters, attempts).

Resellers and customers are named by id or by name, as an operator types them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlmodel import Session, col, or_, select

from services.notifier.formats import FORMATS
from services.notifier.headers import address
from services.notifier.signing import new_secret
from services.notifier.tables import (
    AlertNotifyState,
    BrandRow,
    DeliveryAttempt,
    Notification,
    NotifySettings,
    WebhookEndpoint,
)
from shared.tenancy import Customer, Reseller


class ConfigError(ValueError):
    """The operator asked for something invalid (unknown reseller, bad URL, …)."""


def find_reseller(session: Session, ref: str) -> Reseller:
    query = select(Reseller).where(or_(Reseller.id == ref, Reseller.name == ref))
    row = session.exec(query).first()
    if row is None:
        raise ConfigError(f"no reseller {ref!r}")
    return row


def find_customer(session: Session, reseller: Reseller, ref: str) -> Customer:
    row = session.exec(select(Customer).where(
        Customer.reseller_id == reseller.id, or_(Customer.id == ref, Customer.name == ref)
    )).first()
    if row is None:
        raise ConfigError(f"no customer {ref!r} for reseller {reseller.name!r}")
    return row


def scope(session: Session, reseller: str, customer: str | None) -> tuple[str, str | None]:
    res = find_reseller(session, reseller)
    return res.id, find_customer(session, res, customer).id if customer else None


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    generated_secret: str | None


def add_webhook(session: Session, *, reseller: str, customer: str | None, url: str, fmt: str,
                secret: str | None = None) -> NewEndpoint:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"not an http(s) URL: {url!r}")
    if fmt == "pagerduty" and not secret:
        raise ConfigError("pagerduty needs --secret (the integration's routing key)")
    generated = None
    if fmt == "backstop" and not secret:
        secret = generated = new_secret()
    reseller_id, customer_id = scope(session, reseller, customer)
    endpoint = WebhookEndpoint(id=uuid.uuid4().hex[:16], reseller_id=reseller_id,
                               customer_id=customer_id, url=url, format=fmt, secret=secret)
    session.add(endpoint)
    session.flush()
    return NewEndpoint(endpoint, generated)


def list_webhooks(session: Session) -> list[WebhookEndpoint]:
    return list(session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at)))
                .all())


def remove_webhook(session: Session, endpoint_id: str) -> None:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise ConfigError(f"no webhook endpoint {endpoint_id!r}")
    # Disabled, not deleted: the notification log keeps pointing at it.
    row.enabled = False
    session.add(row)


def check_addresses(emails: list[str]) -> None:
    """Refuse what could not be mailed (it would only be dead-lettered later)."""
    for email in emails:
        try:
            address(email)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


def set_brand(session: Session, reseller: str, **values: str | None) -> BrandRow:
    if values.get("sender"):
        check_addresses([values["sender"] or ""])
    res = find_reseller(session, reseller)
    row = session.get(BrandRow, res.id) or BrandRow(reseller_id=res.id)
    for name, value in values.items():
        if value is not None:
            setattr(row, name, value or None)
    session.add(row)
    return row


def get_brand(session: Session, reseller: str) -> BrandRow:
    res = find_reseller(session, reseller)
    return session.get(BrandRow, res.id) or BrandRow(reseller_id=res.id)


def _settings(session: Session, reseller: str, customer: str | None) -> NotifySettings:
    reseller_id, customer_id = scope(session, reseller, customer)
    row = session.exec(select(NotifySettings).where(
        NotifySettings.reseller_id == reseller_id, NotifySettings.customer_id == (customer_id or "")
    )).first()
    return row or NotifySettings(reseller_id=reseller_id, customer_id=customer_id or "")


def set_contacts(session: Session, reseller: str, customer: str | None,
                 emails: list[str]) -> NotifySettings:
    emails = [e.strip() for e in emails]
    check_addresses(emails)
    row = _settings(session, reseller, customer)
    row.contacts = sorted(set(emails))
    session.add(row)
    return row


def set_repeat(session: Session, reseller: str, customer: str | None,
               seconds: float | None) -> NotifySettings:
    row = _settings(session, reseller, customer)
    row.repeat_interval_seconds = seconds
    session.add(row)
    return row


def list_settings(session: Session) -> list[NotifySettings]:
    return list(session.exec(select(NotifySettings)).all())


def alert_status(session: Session, fingerprint: str | None = None) -> list[AlertNotifyState]:
    query = select(AlertNotifyState).order_by(col(AlertNotifyState.last_notified_at).desc())
    if fingerprint:
        query = query.where(col(AlertNotifyState.fingerprint).startswith(fingerprint))
    return list(session.exec(query).all())


def notifications(session: Session, status: str | None = None,
                  limit: int = 100) -> list[Notification]:
    query = select(Notification).order_by(col(Notification.id).desc()).limit(limit)
    if status:
        query = query.where(Notification.status == status)
    return list(session.exec(query).all())


def attempts(session: Session, notification_id: int) -> list[DeliveryAttempt]:
    return list(session.exec(select(DeliveryAttempt)
                             .where(DeliveryAttempt.notification_id == notification_id)
                             .order_by(col(DeliveryAttempt.id))).all())


