"""Planning: from an accepted transition to one pending notification per receiver.

Two steps, so that a directory outage delays but never drops: :func:`accept` stores the
transition durably (the bus message is acked after it), then the planner resolves receivers and
calls :func:`commit_plan`. Keys make both steps idempotent: a redelivered event or a second
replica adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.notifier.policy import inhibition, reminders, silences
from services.notifier.policy.grouping import group_key
from services.notifier.policy.suppression import Facts
from services.notifier.queue import delivery
from services.notifier.recipients.receivers import Receiver
from services.notifier.tables import AlertNotifyState, Notification, NotifyTransition
from shared.db import rowcount
from shared.events import AlertChanged


def transition_key(alert: AlertChanged) -> str:
    return f"{alert.fingerprint}:{alert.sequence}"


def delivery_key(transition: NotifyTransition, receiver: Receiver) -> str:
    return f"{transition.key}:{receiver.channel}:{receiver.target}"


def accept(session: Session, alert: AlertChanged, now: datetime, repeat_default: float,
           plan_after: datetime | None = None) -> NotifyTransition | None:
    """Store the transition and the alert's current state; None if it was accepted before."""
    key = transition_key(alert)
    if session.exec(select(NotifyTransition.id).where(NotifyTransition.key == key)).first():
        return None
    t = alert.tenant
    row = NotifyTransition(
        key=key, fingerprint=alert.fingerprint, sequence=alert.sequence, transition=alert.state,
        account_id=t.account, customer_id=t.customer, reseller_id=t.reseller,
        alert=alert.model_dump(mode="json"), received_at=now, plan_after=plan_after or now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a replica accepted it at the same moment
        session.rollback()
        return None
    _track_state(session, alert, now, repeat_default)
    return row


def _track_state(session: Session, alert: AlertChanged, now: datetime, default: float) -> None:
    state = session.get(AlertNotifyState, alert.fingerprint)
    if state is not None and state.sequence >= alert.sequence:
        return  # an older transition arriving late does not roll the state back
    t = alert.tenant
    if state is None:
        state = AlertNotifyState(
            fingerprint=alert.fingerprint, account_id=t.account, customer_id=t.customer,
            reseller_id=t.reseller, kind=alert.kind, job=alert.job, state=alert.state,
            sequence=alert.sequence,
        )
    else:
        state.firing_notified = state.firing_notified and alert.state == "resolved"
    state.state, state.sequence = alert.state, alert.sequence
    state.alert = alert.model_dump(mode="json")
    state.reminders_sent = 0
    state.next_reminder_at = (
        reminders.next_reminder(session, state, now, default) if alert.state == "firing" else None
    )
    session.add(state)


def due(session: Session, now: datetime, limit: int = 200) -> list[NotifyTransition]:
    return list(session.exec(
        select(NotifyTransition)
        .where(col(NotifyTransition.planned_at).is_(None), NotifyTransition.plan_after <= now)
        .order_by(col(NotifyTransition.id)).limit(limit)
    ).all())


def facts(session: Session, transition: NotifyTransition, now: datetime) -> Facts:
    alert = AlertChanged.model_validate(transition.alert)
    state = session.get(AlertNotifyState, transition.fingerprint)
    return Facts(
        now=now,
        silences=silences.active_for(session, alert.tenant, now),
        firing_account_kinds=inhibition.firing_account_kinds(session, transition.account_id),
        firing_notified=bool(state and state.firing_notified) or _was_notified(session,
                                                                              transition),
    )


def earlier_unplanned(session: Session, transition: NotifyTransition) -> bool:
    """An earlier transition of the alert still waits (another replica, a retry): this one
    waits too, so a resolve never overtakes the firing it ends."""
    return session.exec(select(NotifyTransition.id).where(
        NotifyTransition.fingerprint == transition.fingerprint,
        NotifyTransition.sequence < transition.sequence,
        col(NotifyTransition.planned_at).is_(None),
    )).first() is not None


def _was_notified(session: Session, transition: NotifyTransition) -> bool:
    """Whether the firing before this resolve had receivers (the state may have moved on)."""
    previous = session.exec(
        select(Notification.id).where(
            Notification.fingerprint == transition.fingerprint,
            Notification.sequence == transition.sequence - 1,
        )
    ).first()
    return previous is not None


def _claim(session: Session, transition_id: int | None, now: datetime) -> bool:
    # Exactly one replica plans a transition: the conditional update is the lock.
    return bool(rowcount(session, update(NotifyTransition)
                         .where(col(NotifyTransition.id) == transition_id,
                                col(NotifyTransition.planned_at).is_(None))
                         .values(planned_at=now)))


def commit_suppressed(session: Session, transition: NotifyTransition, reason: str,
                      now: datetime) -> bool:
    if not _claim(session, transition.id, now):
        return False
    session.execute(update(NotifyTransition).where(col(NotifyTransition.id) == transition.id)
                    .values(suppressed_reason=reason))
    return True


@dataclass(frozen=True)
class PlanOptions:
    group_window: float = 0.0
    # Rows due at once are leased to this (owner, until): the planner's replica delivers them
    # straight away instead of waiting for its dispatcher to claim them.
    lease: tuple[str, datetime] | None = None


def commit_plan(session: Session, transition: NotifyTransition, receivers: list[Receiver],
                now: datetime, options: PlanOptions) -> list[Notification]:
    """Add a pending notification per receiver; returns them ([] if planned elsewhere).
    Receivers planned before, while the directory was down, are not added again."""
    if not _claim(session, transition.id, now):
        return []
    return _add(session, transition, receivers, now, options)


def commit_part(session: Session, transition: NotifyTransition, receivers: list[Receiver],
                now: datetime, options: PlanOptions, error: str,
                delay: float) -> list[Notification]:
    """The directory is down: add the receivers that need no directory now and leave the
    transition unplanned, to be planned in full (adding only what is missing) later."""
    # Counting the attempt is the lock here: the transition stays unclaimed, and a replica
    # that planned the same attempt meanwhile makes this one add nothing.
    counted = rowcount(session, update(NotifyTransition).where(
        col(NotifyTransition.id) == transition.id,
        col(NotifyTransition.planned_at).is_(None),
        col(NotifyTransition.plan_attempts) == transition.plan_attempts,
    ).values(plan_attempts=transition.plan_attempts + 1, last_error=error[:2000],
             plan_after=now + timedelta(seconds=delay)))
    if not counted:
        return []
    return _add(session, transition, receivers, now, options)


def _add(session: Session, transition: NotifyTransition, receivers: list[Receiver],
         now: datetime, options: PlanOptions) -> list[Notification]:
    rows = []
    waiting = delivery.receivers_waiting(session, transition.fingerprint, transition.sequence)
    keys = {delivery_key(transition, r): r for r in receivers}
    planned = set(session.exec(select(Notification.key).where(
        col(Notification.key).in_(list(keys)))).all())
    for key, receiver in keys.items():
        if key in planned:
            continue
        grouped = group_key(receiver.channel, transition.transition, transition.customer_id,
                            receiver.target, options.group_window)
        row = Notification(
            key=key, fingerprint=transition.fingerprint,
            sequence=transition.sequence, account_id=transition.account_id,
            channel=receiver.channel, target=receiver.target, alert=transition.alert,
            transition=transition.transition, reseller_id=transition.reseller_id,
            customer_id=transition.customer_id, group_key=grouped, created_at=now,
            next_attempt_at=now + timedelta(seconds=options.group_window if grouped else 0),
        )
        if options.lease and not grouped and (receiver.channel, receiver.target) not in waiting:
            row.lease_owner, row.lease_until = options.lease
        session.add(row)
        rows.append(row)
    if rows and transition.transition != "resolved":
        state = session.get(AlertNotifyState, transition.fingerprint)
        if state is not None and state.sequence == transition.sequence:
            state.firing_notified = True
            session.add(state)
    session.flush()
    return rows


def postpone(session: Session, transition_id: int | None, error: str, delay: float,
             now: datetime) -> None:
    row = session.get(NotifyTransition, transition_id)
    if row is None or row.planned_at is not None:
        return
    row.plan_attempts += 1
    row.last_error = error[:2000]
    row.plan_after = now + timedelta(seconds=delay)
    session.add(row)
