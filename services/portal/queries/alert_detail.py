"""One alert as its page shows it: what, whose, its transitions and every notification sent.

Filtered by the viewer's scope in the query: an alert of another tenant is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from services.evaluator.tables import Alert, AlertTransition
from services.notifier.tables import DeliveryAttempt, Notification
from shared.db import core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job, Reseller


@dataclass(frozen=True)
class Transition:
    sequence: int
    state: str
    summary: str
    at: datetime


@dataclass(frozen=True)
class Sent:
    transition: str
    channel: str
    target: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    last_http_status: int | None


@dataclass(frozen=True)
class AlertDetail:
    id: str
    fingerprint: str
    kind: str
    state: str
    severity: str
    summary: str
    job: str | None
    job_id: str | None
    key: str | None
    first_seen: datetime
    last_changed: datetime
    details: dict[str, Any]
    reseller: str
    customer: str
    account: str
    account_id: str
    transitions: list[Transition]
    notifications: list[Sent]


def alert_detail(session: Session, scope: Scope, ref: str,
                 notifications_limit: int = 200) -> AlertDetail | None:
    """The alert whose id or fingerprint is ``ref`` (e-mails link the fingerprint), if the scope
    admits it."""
    row = session.exec(
        select(Alert, Account.name, Customer.name, Reseller.name)
        .join(Account, col(Account.id) == Alert.account_id)
        .join(Customer, col(Customer.id) == Alert.customer_id)
        .join(Reseller, col(Reseller.id) == Alert.reseller_id)
        .where(or_(col(Alert.fingerprint) == ref, col(Alert.id) == ref),
               scope.where(core_table(Alert).c.reseller_id, core_table(Alert).c.customer_id))
    ).first()
    if row is None:
        return None
    alert, account, customer, reseller = row
    job_id = None
    if alert.job is not None:
        job_id = session.exec(select(Job.id).where(
            Job.account_id == alert.account_id, Job.name == alert.job)).first()
    transitions = [
        Transition(t.sequence, t.state, t.summary, t.at)
        for t in session.exec(select(AlertTransition).where(
            AlertTransition.alert_id == alert.id).order_by(col(AlertTransition.sequence).desc()))
    ]
    notes = list(session.exec(select(Notification).where(
        Notification.fingerprint == alert.fingerprint)
        .order_by(col(Notification.created_at).desc()).limit(notifications_limit)))
    last_status = _last_http_status(session, [n.id for n in notes if n.id is not None])
    sent = [Sent(n.transition, n.channel, n.target, n.status, n.attempts, n.created_at,
                 n.sent_at, n.last_error, last_status.get(n.id or 0)) for n in notes]
    return AlertDetail(
        alert.id, alert.fingerprint, alert.kind, alert.state, alert.severity, alert.summary,
        alert.job, job_id, alert.key, alert.first_seen, alert.last_changed, alert.details,
        reseller, customer, account, alert.account_id, transitions, sent)


def _last_http_status(session: Session, ids: list[int]) -> dict[int, int | None]:
    """The HTTP status of each notification's latest attempt, in one query (not one each)."""
    if not ids:
        return {}
    last: dict[int, int | None] = {}
    for notification_id, status in session.exec(
            select(DeliveryAttempt.notification_id, DeliveryAttempt.http_status)
            .where(col(DeliveryAttempt.notification_id).in_(ids))
            .order_by(col(DeliveryAttempt.at), col(DeliveryAttempt.id))):
        last[notification_id] = status
    return last
