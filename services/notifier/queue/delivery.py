"""The delivery queue's data side: claim due notifications under a lease, record outcomes.

A lease (owner + expiry) makes exactly one replica deliver a row at a time; a replica killed
mid-delivery leaves a lease that expires, and another replica delivers the row then. The same
replica restarting (it keeps its name, see :class:`Replica`) takes its rows back at once.
Delivery is therefore at-least-once; the ``webhook-id`` / Message-ID stay the same on every
retry so receivers can drop the rare duplicate.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.notifier.errors import Outcome
from services.notifier.queue.backoff import Schedule
from services.notifier.tables import AlertNotifyState, DeliveryAttempt, Notification
from shared.db import rowcount


@dataclass
class Replica:
    """Lease owners of one notifier process: 16 hex digits naming the replica, 8 for this run
    of it, 8 numbering its leases (the column holds 32). A stable replica name lets a restarted
    replica find the leases its previous run left (:func:`reclaim`); no name, no reclaim."""

    name: str = ""
    prefix: str = field(init=False)
    run: str = field(init=False)
    _numbers: itertools.count[int] = field(init=False, default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        named = hashlib.sha256(self.name.encode()).hexdigest() if self.name else uuid.uuid4().hex
        self.prefix, self.run = named[:16], uuid.uuid4().hex[:8]

    def owner(self) -> str:
        """A lease owner no other lease of this process has (claims select rows by it)."""
        return f"{self.prefix}{self.run}{next(self._numbers) % 16**8:08x}"


def reclaim(session: Session, replica: Replica) -> int:
    """Free the rows an earlier run of this replica leased and never finished (it crashed):
    they are due again now, not when the lease expires."""
    query = (update(Notification)
             .where(col(Notification.status) == "pending",
                    col(Notification.lease_owner).startswith(replica.prefix, autoescape=True),
                    ~col(Notification.lease_owner).startswith(replica.prefix + replica.run,
                                                              autoescape=True))
             .values(lease_owner=None, lease_until=None))
    return rowcount(session, query)


def claim(session: Session, now: datetime, lease: float, limit: int,
          owner: str | None = None) -> list[list[Notification]]:
    """Lease due rows (with their whole e-mail group) to ``owner`` (unique per call); returns
    units to deliver together."""
    free = or_(col(Notification.lease_until).is_(None), col(Notification.lease_until) < now)
    # More than the limit: rows waiting for an earlier transition must not crowd out the rest.
    due = _in_order(session, session.execute(
        sa_select(*_ORDERING).where(col(Notification.status) == "pending",
                                    col(Notification.next_attempt_at) <= now, free)
        .order_by(col(Notification.next_attempt_at)).limit(limit * 4)
    ).all())[:limit]
    if not due:
        return []
    ids = {r.id for r in due}
    groups = {r.group_key for r in due if r.group_key}
    if groups:
        ids |= {r.id for r in _in_order(session, session.execute(sa_select(*_ORDERING).where(
            col(Notification.status) == "pending", col(Notification.group_key).in_(groups), free,
        )).all())}
    owner = owner or uuid.uuid4().hex
    session.execute(
        update(Notification)
        .where(col(Notification.id).in_(ids), col(Notification.status) == "pending", free)
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease))
    )
    rows = session.exec(select(Notification).where(Notification.lease_owner == owner)).all()
    units: dict[object, list[Notification]] = defaultdict(list)
    for row in rows:
        units[row.group_key or row.id].append(row)
    return list(units.values())


# What ordering a row needs: its receiver, its alert, its place among the alert's transitions.
_ORDERING = (col(Notification.id), col(Notification.group_key), col(Notification.fingerprint),
             col(Notification.channel), col(Notification.target), col(Notification.sequence))


def _in_order(session: Session, rows: Sequence[Any]) -> list[Any]:
    """The rows no earlier transition of their alert still waits before, at the same receiver:
    a ticket system must get the trigger before the resolve (reminders share their alert's
    sequence and do not wait)."""
    first = first_pending(session, {r.fingerprint for r in rows})
    return [r for r in rows
            if first.get((r.fingerprint, r.channel, r.target), r.sequence) >= r.sequence]


def first_pending(session: Session, fingerprints: Collection[str]
                  ) -> dict[tuple[str, str, str], int]:
    """Per (alert, channel, target): the earliest sequence still pending."""
    if not fingerprints:
        return {}
    return {(f, c, t): int(seq) for f, c, t, seq in session.exec(
        select(Notification.fingerprint, Notification.channel, Notification.target,
               func.min(Notification.sequence))
        .where(col(Notification.fingerprint).in_(list(fingerprints)),
               Notification.status == "pending")
        .group_by(col(Notification.fingerprint), col(Notification.channel),
                  col(Notification.target))
    ).all()}


def receivers_waiting(session: Session, fingerprint: str, sequence: int) -> set[tuple[str, str]]:
    """(channel, target) of the receivers an earlier transition of the alert is still pending
    for: a new transition's notification to them must not be delivered before it."""
    return {(c, t) for (_, c, t), first in first_pending(session, [fingerprint]).items()
            if first < sequence}


@dataclass(frozen=True)
class Recorded:
    """Where an attempt left its row: ``sent``, ``retry`` (again at ``next_attempt_at``) or
    ``dead``, after ``attempts`` attempts."""

    status: str
    attempts: int
    next_attempt_at: datetime | None = None


def record(session: Session, row_id: int | None, outcome: Outcome, now: datetime,
           schedule: Schedule, duration_ms: float | None = None) -> Recorded:
    """Store one attempt and move the row on."""
    row = session.get(Notification, row_id)
    assert row is not None
    row.attempts += 1
    row.last_error = outcome.error
    row.lease_until = row.lease_owner = None
    status = outcome.status
    if status == "sent":
        row.status, row.sent_at = "sent", now
        _notified(session, row.fingerprint, now)
    elif status == "retry":
        following = schedule.next_attempt(row.created_at, now, row.attempts, outcome.retry_after)
        if following is None:
            status = "dead"
        else:
            row.next_attempt_at = following
    if status == "dead":
        row.status, row.dead_at = "dead", now
    session.add(row)
    assert row.id is not None
    session.add(DeliveryAttempt(
        notification_id=row.id, at=now, status=status, error=outcome.error,
        channel=row.channel, target=row.target, http_status=outcome.http_status,
        duration_ms=duration_ms,
    ))
    return Recorded(status, row.attempts, row.next_attempt_at if status == "retry" else None)


def _notified(session: Session, fingerprint: str, now: datetime) -> None:
    state = session.get(AlertNotifyState, fingerprint)
    if state is not None:
        state.last_notified_at = now
        state.notification_count += 1
        session.add(state)


def replay(session: Session, now: datetime, ids: list[int] | None = None) -> int:
    """Put dead notifications back in the queue (all of them, or the given ids)."""
    query = (update(Notification).where(col(Notification.status) == "dead")
             .values(status="pending", next_attempt_at=now, created_at=now, dead_at=None,
                     lease_until=None, lease_owner=None))
    if ids is not None:
        query = query.where(col(Notification.id).in_(ids))
    return rowcount(session, query)


def depth(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Notification.status, func.count()).where(
            col(Notification.status).in_(["pending", "dead"])
        ).group_by(Notification.status)
    ).all()
    found = {status: int(count) for status, count in rows}
    return {"pending": found.get("pending", 0), "dead": found.get("dead", 0)}
