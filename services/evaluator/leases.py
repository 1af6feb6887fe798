"""Partition leases: which replica evaluates which partition of accounts.

Every replica registers as a member and holds leases on its fair share of the partitions
(partitions / live members, rounded up). Leases expire unless renewed, so a replica that dies
loses its partitions to the others within one lease period; a replica that finds itself above
its share (a new member joined) lets the surplus go. Expiry uses wall-clock time on purpose:
leases are infrastructure, not the domain clock that tests move.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, update
from sqlalchemy import select as sql_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from services.evaluator.tables import EvaluatorMember, PartitionLease
from shared.db import core_table, rowcount


class LeaseLost(RuntimeError):
    """This replica no longer holds the partition: its work must not commit."""


def _now() -> datetime:
    return datetime.now(UTC)


def _insert_ignore(session: Session, table: type, values: dict[str, object]) -> int:
    """INSERT … ON CONFLICT DO NOTHING on either backend; returns the rows inserted."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return rowcount(session, statement)


class Leases:
    def __init__(self, replica_id: str, partitions: int, ttl: timedelta) -> None:
        self.replica_id = replica_id
        self.partitions = partitions
        self.ttl = ttl

    def renew(self, session: Session, keep: set[int] | None = None) -> set[int]:
        """Renew what we hold, take free partitions up to our share; returns what we hold.

        Surplus partitions are not dropped here: the caller stops their workers first and
        then calls :meth:`release`, so nobody else starts on them while we still work.
        """
        now = _now()
        until = now + self.ttl
        session.execute(delete(EvaluatorMember).where(col(EvaluatorMember.expires_at) < now))
        if not _insert_ignore(session, EvaluatorMember,
                              {"replica_id": self.replica_id, "expires_at": until}):
            session.execute(update(EvaluatorMember)
                            .where(col(EvaluatorMember.replica_id) == self.replica_id)
                            .values(expires_at=until))
        session.execute(update(PartitionLease)
                        .where(col(PartitionLease.owner) == self.replica_id,
                               col(PartitionLease.expires_at) >= now)
                        .values(expires_at=until))
        held = self.held(session, now)
        if len(held) >= self.share(session):
            return held
        for partition in self._free(session, now):
            if len(held) >= self.share(session):
                break
            if self._take(session, partition, now, until):
                held.add(partition)
        return held

    def share(self, session: Session) -> int:
        members = session.exec(select(func.count()).select_from(EvaluatorMember)).one()
        return math.ceil(self.partitions / max(1, int(members)))

    def held(self, session: Session, now: datetime | None = None) -> set[int]:
        now = now or _now()
        return set(session.exec(select(PartitionLease.partition).where(
            PartitionLease.owner == self.replica_id, col(PartitionLease.expires_at) >= now)))

    def surplus(self, session: Session, held: set[int]) -> set[int]:
        extra = len(held) - self.share(session)
        return set(sorted(held)[-extra:]) if extra > 0 else set()

    def _free(self, session: Session, now: datetime) -> list[int]:
        taken = set(session.exec(select(PartitionLease.partition).where(
            col(PartitionLease.expires_at) >= now)))
        return [p for p in range(self.partitions) if p not in taken]

    def _take(self, session: Session, partition: int, now: datetime, until: datetime) -> bool:
        if _insert_ignore(session, PartitionLease,
                          {"partition": partition, "owner": self.replica_id, "expires_at": until}):
            return True
        return bool(rowcount(session, update(PartitionLease)
                             .where(col(PartitionLease.partition) == partition,
                                    col(PartitionLease.expires_at) < now)
                             .values(owner=self.replica_id, expires_at=until)))

    def release(self, session: Session, partitions: set[int]) -> None:
        if partitions:
            session.execute(delete(PartitionLease).where(
                col(PartitionLease.partition).in_(list(partitions)),
                col(PartitionLease.owner) == self.replica_id))

    def leave(self, session: Session) -> None:
        """Clean shutdown: hand every partition back at once instead of after expiry."""
        session.execute(delete(PartitionLease).where(
            col(PartitionLease.owner) == self.replica_id))
        session.execute(delete(EvaluatorMember).where(
            col(EvaluatorMember.replica_id) == self.replica_id))

    def check(self, session: Session, partition: int) -> None:
        """Fence: raise :class:`LeaseLost` unless we still hold ``partition`` right now."""
        table = core_table(PartitionLease)
        lease = session.execute(sql_select(table.c.owner, table.c.expires_at)
                                .where(table.c.partition == partition)).first()
        if lease is None or lease.owner != self.replica_id or lease.expires_at < _now():
            raise LeaseLost(f"partition {partition} is no longer held by {self.replica_id}")
