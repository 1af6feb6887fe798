"""Reminders: while an alert stays firing, it is announced again every repeat interval.

The interval is the customer's setting, else the reseller's, else the notifier's default; 0
turns reminders off. A reminder is a transition like any other (``fingerprint:sequence:rN``), so
the notification log makes it happen once even with two replicas.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.notifier.tables import AlertNotifyState, NotifySettings, NotifyTransition


def repeat_interval(session: Session, reseller_id: str, customer_id: str, default: float) -> float:
    rows = session.exec(
        select(NotifySettings).where(
            NotifySettings.reseller_id == reseller_id,
            col(NotifySettings.customer_id).in_(["", customer_id]),
        )
    ).all()
    by_scope = {r.customer_id: r.repeat_interval_seconds for r in rows}
    for scope in (customer_id, ""):
        value = by_scope.get(scope)
        if value is not None:
            return value
    return default


def next_reminder(session: Session, state: AlertNotifyState, now: datetime,
                  default: float) -> datetime | None:
    interval = repeat_interval(session, state.reseller_id, state.customer_id, default)
    return now + timedelta(seconds=interval) if interval > 0 else None


def reminder_key(fingerprint: str, sequence: int, number: int) -> str:
    return f"{fingerprint}:{sequence}:r{number}"


def enqueue_due(session: Session, now: datetime, default: float, limit: int = 200) -> int:
    """Add a reminder transition for every firing alert whose reminder is due."""
    due = session.exec(
        select(AlertNotifyState).where(
            AlertNotifyState.state == "firing",
            col(AlertNotifyState.next_reminder_at).is_not(None),
            col(AlertNotifyState.next_reminder_at) <= now,
        ).limit(limit)
    ).all()
    for state in due:
        number = state.reminders_sent + 1
        key = reminder_key(state.fingerprint, state.sequence, number)
        if session.exec(select(NotifyTransition.id).where(NotifyTransition.key == key)).first():
            continue
        session.add(NotifyTransition(
            key=key, fingerprint=state.fingerprint, sequence=state.sequence,
            transition="reminder", account_id=state.account_id,
            customer_id=state.customer_id, reseller_id=state.reseller_id, alert=state.alert,
            received_at=now, plan_after=now,
        ))
        state.reminders_sent = number
        state.next_reminder_at = next_reminder(session, state, now, default)
        session.add(state)
    try:
        session.flush()
    except IntegrityError:  # another replica enqueued the same reminder: it is done
        session.rollback()
        return 0
    return len(due)
