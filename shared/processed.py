"""Which consumer has applied which event: makes a redelivered event harmless.

A consumer claims the events of a unit of work in that unit of work: the claims commit with the
work, so a redelivered event is skipped, and a crash before the commit leaves neither behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import select as sql_select
from sqlmodel import Field, Session, SQLModel, col

from shared.db import UtcDateTime, core_table
from shared.events import utcnow

_CHUNK = 500  # keeps IN lists well below every backend's parameter limit


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_events"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=100)
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def claim_events(session: Session, consumer: str, event_ids: list[str]) -> set[str]:
    """Claim for ``consumer`` the events it has not applied before, in two statements; returns
    the ids to apply. A replica claiming the same id at the same moment makes the insert fail
    (a transient failure: see :mod:`shared.failures`) and the work retry, when it will see the
    claim."""
    wanted = list(dict.fromkeys(event_ids))
    table = core_table(ProcessedEvent)
    seen: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        seen.update(session.execute(
            sql_select(table.c.event_id).where(
                table.c.consumer == consumer, table.c.event_id.in_(wanted[start:start + _CHUNK]))
        ).scalars())
    fresh = [event_id for event_id in wanted if event_id not in seen]
    if fresh:
        now = utcnow()
        session.execute(table.insert(), [
            {"consumer": consumer, "event_id": event_id, "processed_at": now}
            for event_id in fresh])
    return set(fresh)


def forget_before(session: Session, consumer: str, cutoff: datetime) -> None:
    """Drop ``consumer``'s claims older than ``cutoff``: no redelivery comes that late."""
    session.execute(delete(ProcessedEvent).where(
        col(ProcessedEvent.consumer) == consumer, col(ProcessedEvent.processed_at) < cutoff))
