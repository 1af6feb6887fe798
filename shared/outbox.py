"""Transactional outbox: events written in the same database transaction as the state they
describe, then published. A crash between commit and publish loses nothing: the relay publishes
what is left on the next pass, and ``Nats-Msg-Id`` makes a second publish harmless."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial

from sqlalchemy import LargeBinary, delete
from sqlmodel import Field, Session, SQLModel, col, select

from shared.bus import Bus
from shared.db import Database, UtcDateTime
from shared.events import Event, decode, utcnow
from shared.wakeup import Wakeup, pause

log = logging.getLogger(__name__)


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=100, unique=True)
    payload: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def enqueue(session: Session, event: Event) -> None:
    session.add(OutboxRow(event_id=event.event_id, payload=event.encode()))


class OutboxRelay:
    """Publishes outbox rows in order; wake it with :meth:`poke` after a commit."""

    def __init__(self, db: Database, bus: Bus, batch: int = 500) -> None:
        self._db = db
        self._bus = bus
        self._batch = batch
        self._wakeup = Wakeup()

    def poke(self) -> None:
        self._wakeup.poke()

    async def flush(self) -> int:
        """Publish everything pending; returns how many events went out."""
        sent = 0
        while True:
            rows = await self._db.run(self._pending)
            if not rows:
                return sent
            events = [decode(row.payload) for row in rows]
            await asyncio.gather(*(self._bus.publish(event) for event in events))
            await self._db.run(partial(_delete, event_ids=[row.event_id for row in rows]))
            sent += len(rows)

    def _pending(self, session: Session) -> list[OutboxRow]:
        return list(session.exec(select(OutboxRow).order_by(col(OutboxRow.seq)).limit(self._batch)))

    async def run(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        while not stop.is_set():
            try:
                await self.flush()
            except Exception as exc:
                # NATS or the database briefly away: what is left stays in the outbox, and a
                # relay that died here would silently stop every alert of this process.
                log.warning("outbox relay: %r", exc)
                await pause(stop, 0.5)
                continue
            await self._wakeup.wait(stop, interval)
        try:
            await self.flush()
        except Exception as exc:  # the next start publishes what is left
            log.warning("outbox relay: final flush failed: %r", exc)


def _delete(session: Session, event_ids: list[str]) -> None:
    # By event id, not by seq: SQLite hands out a deleted row's seq again once the table is
    # empty, so after another relay emptied it, a seq read earlier may name a new, unpublished
    # row. One statement, and no row-count check: another replica's relay may have published
    # and deleted the same rows already, which is harmless (JetStream dropped the duplicates).
    session.execute(delete(OutboxRow).where(col(OutboxRow.event_id).in_(event_ids)))
