"""Administration of the notifier's configuration: webhook endpoints, brands, contacts, repeat
intervals, and queries for the operator (status of an alert, dead letters, attempts).

Resellers and customers are named by id or by name, as an operator types them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from services.notifier.channels.formats import FORMATS
from services.notifier.channels.headers import address
from services.notifier.channels.signing import WeakSecret, check_secret, new_secret
from services.notifier.channels.targets import TargetPolicy, TargetRefused, check_url
from services.notifier.policy import silences
from services.notifier.tables import (
    AlertNotifyState,
    BrandRow,
    DeliveryAttempt,
    Notification,
    NotifySettings,
    NotifyTransition,
    Silence,
    WebhookEndpoint,
)
from shared.db import core_table
from shared.paging import Page, fetch_page
from shared.secretbox import SecretBox
from shared.tenancy import Customer, Reseller

# A PagerDuty routing key is 32 characters; nothing legitimate comes near this.
MAX_SECRET_CHARS = 200


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
                secret: str | None = None, keys: SecretBox,
                targets: TargetPolicy | None = None) -> NewEndpoint:
    """``keys`` seal the secret for storage; ``targets`` say which addresses may receive
    (default: public ones only)."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}")
    try:
        check_url(url, targets or TargetPolicy())
    except TargetRefused as exc:
        raise ConfigError(f"webhook URL refused: {exc}") from exc
    _check_secret(fmt, secret)
    generated = None
    if fmt == "backstop" and not secret:
        secret = generated = new_secret()
    reseller_id, customer_id = scope(session, reseller, customer)
    endpoint = WebhookEndpoint(id=uuid.uuid4().hex[:16], reseller_id=reseller_id,
                               customer_id=customer_id, url=url, format=fmt,
                               secret=keys.seal(secret) if secret else None)
    session.add(endpoint)
    session.flush()
    return NewEndpoint(endpoint, generated)


def _check_secret(fmt: str, secret: str | None) -> None:
    if fmt == "pagerduty" and not secret:
        raise ConfigError("pagerduty needs --secret (the integration's routing key)")
    if fmt == "alertmanager" and secret:
        raise ConfigError("alertmanager payloads are not signed: leave out --secret")
    if secret and len(secret) > MAX_SECRET_CHARS:
        raise ConfigError(f"--secret is longer than {MAX_SECRET_CHARS} characters")
    if fmt == "backstop" and secret:
        try:
            check_secret(secret)
        except WeakSecret as exc:
            raise ConfigError(f"signing secret refused: {exc}") from exc


def reseal_secrets(session: Session, keys: SecretBox) -> int:
    """Seal every stored secret with the first key (after a key rotation); returns how many."""
    rows = session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.secret).is_not(None)))
    count = 0
    for row in rows:
        assert row.secret is not None
        row.secret = keys.rotate(row.secret)
        session.add(row)
        count += 1
    return count


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


# The longest value each branding field's column holds.
BRAND_FIELDS = {"name": 200, "logo_url": 2000, "sender": 300, "footer": 2000}


def set_brand(session: Session, reseller: str, **values: str | None) -> BrandRow:
    for name, value in values.items():
        if name not in BRAND_FIELDS:
            raise ConfigError(f"no branding field {name!r}")
        if value and len(value) > BRAND_FIELDS[name]:
            raise ConfigError(f"{name} is longer than {BRAND_FIELDS[name]} characters")
    if values.get("sender"):
        check_addresses([values["sender"] or ""])
    logo = values.get("logo_url")
    if logo and not logo.lower().startswith(("https://", "http://")):
        raise ConfigError("logo_url must be an http or https URL")
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


NOTIFICATION_STATUSES = ("pending", "sent", "dead")
ALERT_STATES = ("firing", "resolved")


def _kind() -> Any:
    """The alert kind of a notification (kept in its alert JSON; SQLite and PostgreSQL)."""
    return core_table(Notification).c.alert["kind"].as_string()


@dataclass(frozen=True)
class Filters:
    """What operators narrow the log by; ``None`` = any."""

    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class AlertRow:
    state: AlertNotifyState
    dead: int  # its dead-lettered notifications


def alert_status(session: Session, fingerprint: str | None = None, *, state: str | None = None,
                 kind: str | None = None, limit: int = 50, offset: int = 0) -> Page[AlertRow]:
    dead = (select(Notification.fingerprint, func.count().label("dead"))
            .where(Notification.status == "dead").group_by(col(Notification.fingerprint))
            .subquery())
    query = (select(AlertNotifyState, func.coalesce(dead.c.dead, 0))
             .join(dead, dead.c.fingerprint == AlertNotifyState.fingerprint, isouter=True)
             .order_by(col(AlertNotifyState.last_notified_at).desc().nulls_last(),
                       col(AlertNotifyState.fingerprint)))
    if fingerprint:
        query = query.where(col(AlertNotifyState.fingerprint).startswith(fingerprint))
    if state:
        query = query.where(AlertNotifyState.state == state)
    if kind:
        query = query.where(AlertNotifyState.kind == kind)
    page = fetch_page(session, query, limit, offset)
    return Page([AlertRow(state, int(count)) for state, count in page.items], page.total, offset)


def _notification_filters(query: Any, filters: Filters) -> Any:
    if filters.status:
        query = query.where(Notification.status == filters.status)
    if filters.kind:
        query = query.where(_kind() == filters.kind)
    if filters.channel:
        query = query.where(Notification.channel == filters.channel)
    if filters.since:
        query = query.where(col(Notification.created_at) >= filters.since)
    return query


def notifications(session: Session, filters: Filters = Filters(), limit: int = 50,
                  offset: int = 0) -> Page[Notification]:
    """The notification log, newest first."""
    query = select(Notification).order_by(col(Notification.id).desc())
    return fetch_page(session, _notification_filters(query, filters), limit, offset)


def suppressed(session: Session, limit: int = 50, offset: int = 0) -> Page[NotifyTransition]:
    """Transitions not notified, newest first."""
    query = (select(NotifyTransition)
             .where(col(NotifyTransition.suppressed_reason).is_not(None))
             .order_by(col(NotifyTransition.id).desc()))
    return fetch_page(session, query, limit, offset)


@dataclass(frozen=True)
class Counts:
    """How many, grouped: ``(state, kind, count)`` per alert group, ``(status, channel, kind,
    count)`` per notification group."""

    alerts: list[tuple[str, str, int]]
    notifications: list[tuple[str, str, str, int]]


def counts(session: Session, filters: Filters = Filters()) -> Counts:
    """Alerts by state and kind (``kind`` narrows them), notifications by status, channel and
    kind (every filter narrows them)."""
    alerts = (select(AlertNotifyState.state, AlertNotifyState.kind, func.count())
              .group_by(col(AlertNotifyState.state), col(AlertNotifyState.kind))
              .order_by(col(AlertNotifyState.state), col(AlertNotifyState.kind)))
    if filters.kind:
        alerts = alerts.where(AlertNotifyState.kind == filters.kind)
    kind = _kind()
    notes = _notification_filters(
        select(Notification.status, Notification.channel, kind, func.count())
        .group_by(col(Notification.status), col(Notification.channel), kind)
        .order_by(col(Notification.status), col(Notification.channel), kind), filters)
    return Counts(
        [(state, kind_, int(n)) for state, kind_, n in session.exec(alerts).all()],
        [(status, channel, k or "-", int(n))
         for status, channel, k, n in session.execute(notes).all()],
    )


def attempts(session: Session, notification_id: int) -> list[DeliveryAttempt]:
    return list(session.exec(select(DeliveryAttempt)
                             .where(DeliveryAttempt.notification_id == notification_id)
                             .order_by(col(DeliveryAttempt.id))).all())


def add_silence(session: Session, *, reseller_id: str, customer_id: str | None,
                account_id: str | None, starts_at: datetime, ends_at: datetime,
                reason: str = "") -> Silence:
    """A maintenance window for a reseller, or narrowed to a customer and an account."""
    try:
        return silences.add(session, reseller_id=reseller_id, customer_id=customer_id,
                            account_id=account_id, starts_at=starts_at, ends_at=ends_at,
                            reason=reason)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def end_silence(session: Session, silence_id: str, at: datetime) -> Silence:
    """End a silence now (kept, with its end, for the record)."""
    row = session.get(Silence, silence_id)
    if row is None:
        raise ConfigError(f"no silence {silence_id!r}")
    row.ends_at = min(row.ends_at, at)
    session.add(row)
    return row
