"""The alert log: open alerts, each alert's history (when it fired and resolved) and every
notification sent for it (when, to whom, which channel, delivered or not, how many tries).

Read from the evaluator's tables (``alerts``, ``alert_transitions``) and the notifier's
(``alert_notify_state``, ``notifications``, ``delivery_attempts``, ``notify_transitions``,
``webhook_endpoints``, ``silences``). Every query carries the user's :class:`Scope` on the alert's
or account's tenant columns, so another tenant's fingerprint or id matches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.evaluator.tables import Alert, AlertTransition
from services.notifier.tables import (
    AlertNotifyState,
    DeliveryAttempt,
    Notification,
    NotifyTransition,
    Silence,
    WebhookEndpoint,
)
from shared.db import core_table
from shared.paging import Page, fetch_page
from shared.scopes import Scope
from shared.tenancy import Account, Customer

ALERTS = core_table(Alert)
ACCOUNTS = core_table(Account)

ALERT_STATES = ("firing", "resolved")
DELIVERY_STATUSES = ("pending", "sent", "dead")
CHANNELS = ("email", "webhook")


@dataclass(frozen=True)
class AlertEntry:
    """One alert as listed: what it is about, its state, and when anyone was last told."""

    fingerprint: str
    kind: str
    severity: str
    state: str
    summary: str
    reseller_id: str
    customer_id: str
    customer: str
    account_id: str
    account: str
    job: str | None
    first_seen: datetime
    last_changed: datetime
    last_notified_at: datetime | None
    notification_count: int


@dataclass(frozen=True)
class AlertFilters:
    """``None`` = any; ``text`` matches the summary, job, account or customer name."""

    state: str | None = None
    kind: str | None = None
    customer_id: str | None = None
    account_id: str | None = None
    text: str | None = None


def _entries(scope: Scope) -> Any:
    return (
        sa_select(Alert, col(Account.name), col(Customer.name),
                  col(AlertNotifyState.last_notified_at),
                  func.coalesce(AlertNotifyState.notification_count, 0))
        .join(Account, col(Account.id) == Alert.account_id)
        .join(Customer, col(Customer.id) == Alert.customer_id)
        .join(AlertNotifyState, col(AlertNotifyState.fingerprint) == Alert.fingerprint,
              isouter=True)
        .where(scope.where(ALERTS.c.reseller_id, ALERTS.c.customer_id))
    )


def _entry(row: Sequence[Any]) -> AlertEntry:
    alert, account, customer, last_notified, count = row
    return AlertEntry(
        fingerprint=alert.fingerprint, kind=alert.kind, severity=alert.severity,
        state=alert.state, summary=alert.summary, reseller_id=alert.reseller_id,
        customer_id=alert.customer_id, customer=customer, account_id=alert.account_id,
        account=account, job=alert.job, first_seen=alert.first_seen,
        last_changed=alert.last_changed, last_notified_at=last_notified,
        notification_count=int(count))


def alerts(session: Session, scope: Scope, filters: AlertFilters = AlertFilters(), *,
           limit: int = 50, offset: int = 0) -> Page[AlertEntry]:
    """Alerts in scope, firing ones first, then the most recently changed."""
    query = _entries(scope).order_by(
        case((col(Alert.state) == "firing", 0), else_=1), col(Alert.last_changed).desc(),
        col(Alert.fingerprint))
    if filters.state:
        query = query.where(Alert.state == filters.state)
    if filters.kind:
        query = query.where(Alert.kind == filters.kind)
    if filters.customer_id:
        query = query.where(Alert.customer_id == filters.customer_id)
    if filters.account_id:
        query = query.where(Alert.account_id == filters.account_id)
    if filters.text:
        query = query.where(or_(*(
            column.icontains(filters.text, autoescape=True)
            for column in (col(Alert.summary), col(Alert.job), col(Account.name),
                           col(Customer.name)))))
    page = fetch_page(session, query, limit, offset)
    return Page([_entry(row) for row in page.items], page.total, offset, limit)


def open_alerts(session: Session, scope: Scope, *, limit: int = 50,
                offset: int = 0) -> Page[AlertEntry]:
    return alerts(session, scope, AlertFilters(state="firing"), limit=limit, offset=offset)


@dataclass(frozen=True)
class Attempt:
    at: datetime
    status: str  # sent | retry | dead
    error: str | None
    http_status: int | None
    duration_ms: float | None


@dataclass(frozen=True)
class Delivery:
    """One notification of one transition to one receiver, with every attempt."""

    id: int
    transition: str  # firing | resolved | reminder
    sequence: int
    channel: str
    to: str  # the address, or the webhook endpoint's URL
    status: str  # pending | sent | dead
    created_at: datetime
    sent_at: datetime | None
    dead_at: datetime | None
    last_error: str | None
    attempts: list[Attempt]

    @property
    def delivered(self) -> bool:
        return self.status == "sent"

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(len(self.attempts) - 1, 0)


@dataclass(frozen=True)
class Change:
    """The alert fired or resolved (``sequence`` numbers its transitions)."""

    sequence: int
    state: str
    summary: str
    at: datetime


@dataclass(frozen=True)
class NotNotified:
    """A transition nobody was told of, and why (a silence, inhibition, …)."""

    transition: str
    sequence: int
    reason: str
    at: datetime | None


@dataclass(frozen=True)
class AlertHistory:
    alert: AlertEntry
    details: dict[str, Any]
    changes: list[Change]
    deliveries: list[Delivery]
    not_notified: list[NotNotified]


def alert_history(session: Session, scope: Scope, fingerprint: str) -> AlertHistory | None:
    """One alert in scope with its transitions and notifications; None when there is none."""
    row = session.execute(_entries(scope).where(Alert.fingerprint == fingerprint)).first()
    if row is None:
        return None
    alert: Alert = row[0]
    changes = [Change(t.sequence, t.state, t.summary, t.at) for t in session.exec(
        select(AlertTransition).where(AlertTransition.alert_id == alert.id)
        .order_by(col(AlertTransition.sequence))).all()]
    return AlertHistory(_entry(row), dict(alert.details), changes,
                        _deliveries(session, fingerprint, alert.account_id),
                        _not_notified(session, fingerprint, alert.account_id))


def _deliveries(session: Session, fingerprint: str, account_id: str) -> list[Delivery]:
    notes = list(session.exec(select(Notification).where(
        Notification.fingerprint == fingerprint, Notification.account_id == account_id)
        .order_by(col(Notification.id))).all())
    ids = [n.id for n in notes if n.id is not None]
    attempts: dict[int, list[Attempt]] = {i: [] for i in ids}
    if ids:
        for a in session.exec(select(DeliveryAttempt).where(
                col(DeliveryAttempt.notification_id).in_(ids))
                .order_by(col(DeliveryAttempt.id))).all():
            attempts[a.notification_id].append(
                Attempt(a.at, a.status, a.error, a.http_status, a.duration_ms))
    urls = _endpoint_urls(session, {n.target for n in notes if n.channel == "webhook"})
    return [Delivery(id=n.id or 0, transition=n.transition, sequence=n.sequence,
                     channel=n.channel, to=urls.get(n.target, n.target), status=n.status,
                     created_at=n.created_at, sent_at=n.sent_at, dead_at=n.dead_at,
                     last_error=n.last_error, attempts=attempts.get(n.id or 0, []))
            for n in notes]


def _endpoint_urls(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return {e.id: e.url for e in session.exec(
        select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(ids))).all()}


def _not_notified(session: Session, fingerprint: str, account_id: str) -> list[NotNotified]:
    rows = session.exec(select(NotifyTransition).where(
        NotifyTransition.fingerprint == fingerprint, NotifyTransition.account_id == account_id,
        col(NotifyTransition.suppressed_reason).is_not(None))
        .order_by(col(NotifyTransition.id))).all()
    return [NotNotified(r.transition, r.sequence, r.suppressed_reason or "", r.planned_at)
            for r in rows]


@dataclass(frozen=True)
class SentEntry:
    """A row of the notifications-sent log."""

    id: int
    fingerprint: str
    kind: str | None
    transition: str
    account_id: str
    account: str
    channel: str
    to: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class SentFilters:
    status: str | None = None
    channel: str | None = None
    since: datetime | None = None
    account_id: str | None = None


def notifications_sent(session: Session, scope: Scope, filters: SentFilters = SentFilters(),
                       *, limit: int = 50, offset: int = 0) -> Page[SentEntry]:
    """The notification log in scope (scoped on the account's tenant), newest first."""
    query = (select(Notification, Account.name)
             .join(Account, col(Account.id) == Notification.account_id)
             .where(scope.where(ACCOUNTS.c.reseller_id, ACCOUNTS.c.customer_id))
             .order_by(col(Notification.id).desc()))
    if filters.status:
        query = query.where(Notification.status == filters.status)
    if filters.channel:
        query = query.where(Notification.channel == filters.channel)
    if filters.since:
        query = query.where(col(Notification.created_at) >= filters.since)
    if filters.account_id:
        query = query.where(Notification.account_id == filters.account_id)
    page = fetch_page(session, query, limit, offset)
    notes: list[tuple[Notification, str]] = [(n, name) for n, name in page.items]
    urls = _endpoint_urls(session, {n.target for n, _ in notes if n.channel == "webhook"})
    return Page([SentEntry(
        id=n.id or 0, fingerprint=n.fingerprint, kind=n.alert.get("kind"),
        transition=n.transition, account_id=n.account_id, account=name, channel=n.channel,
        to=urls.get(n.target, n.target), status=n.status, attempts=n.attempts,
        created_at=n.created_at, sent_at=n.sent_at, last_error=n.last_error)
        for n, name in notes], page.total, offset, limit)


@dataclass(frozen=True)
class SilenceEntry:
    id: str
    reseller_id: str
    customer_id: str | None
    account_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str


def active_silences(session: Session, scope: Scope, at: datetime) -> list[SilenceEntry]:
    """Silences in force (or to come) that cover something in scope: a reseller-wide one covers
    every customer of the reseller, so its customers see it too."""
    query = select(Silence).where(Silence.ends_at > at).order_by(col(Silence.starts_at))
    if scope.reseller_id is not None:
        query = query.where(Silence.reseller_id == scope.reseller_id)
    if scope.customer_id is not None:
        own_accounts = select(Account.id).where(Account.customer_id == scope.customer_id)
        query = query.where(
            or_(col(Silence.customer_id).is_(None), col(Silence.customer_id) == scope.customer_id),
            or_(col(Silence.account_id).is_(None), col(Silence.account_id).in_(own_accounts)))
    return [SilenceEntry(s.id, s.reseller_id, s.customer_id, s.account_id, s.starts_at,
                         s.ends_at, s.reason) for s in session.exec(query).all()]
