"""Forgetting history past the retention: the oldest rows go in batches, each in its own short
transaction, so pruning never holds a lock the projection or the pages wait on for long."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, delete, tuple_
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.history.projection import ALERTS_CONSUMER, INGEST_CONSUMER
from services.portal.history.runs import day_of
from services.portal.history.tables import HistoryDayCell, HistoryRun, HistoryUsageDay
from shared.db import Database, core_table, rowcount
from shared.processed import forget_before

# Applied event ids are kept this long: a redelivery comes within the ack wait, and an ordered
# consumer's restart within minutes.
PROCESSED_RETENTION = timedelta(hours=72)

_RUNS = core_table(HistoryRun)
_CELLS = core_table(HistoryDayCell)
_USAGE = core_table(HistoryUsageDay)


def prune_runs(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` runs from before ``cutoff``; returns how many went."""
    oldest = sql_select(_RUNS.c.id).where(_RUNS.c.at < cutoff).order_by(_RUNS.c.at).limit(limit)
    ids = list(session.execute(oldest).scalars())
    if not ids:
        return 0
    return rowcount(session, delete(_RUNS).where(_RUNS.c.id.in_(ids)))


def _prune_days(session: Session, table: Table, owner: Column[Any], cutoff: datetime,
                limit: int) -> int:
    """Delete up to ``limit`` rows of a per-day table (keyed ``owner``, ``day``) from days
    before ``cutoff``'s; returns how many went."""
    keys = [tuple(row) for row in session.execute(
        sql_select(owner, table.c.day).where(table.c.day < day_of(cutoff)).limit(limit))]
    if not keys:
        return 0
    return rowcount(session, delete(table).where(tuple_(owner, table.c.day).in_(keys)))


def prune_cells(session: Session, cutoff: datetime, limit: int) -> int:
    return _prune_days(session, _CELLS, _CELLS.c.job_id, cutoff, limit)


def prune_usage(session: Session, cutoff: datetime, limit: int) -> int:
    return _prune_days(session, _USAGE, _USAGE.c.account_id, cutoff, limit)


def forget_claims(session: Session, now: datetime) -> None:
    for consumer in (INGEST_CONSUMER, ALERTS_CONSUMER):
        forget_before(session, consumer, now - PROCESSED_RETENTION)


async def prune(db: Database, now: datetime, retention_days: int, batch: int) -> int:
    """Everything from before ``now - retention_days``, ``batch`` rows per transaction;
    returns how many rows went."""
    cutoff = now - timedelta(days=retention_days)
    total = 0
    for step in (prune_runs, prune_cells, prune_usage):
        while True:
            gone = await db.run(lambda s, step=step: step(s, cutoff, batch))  # type: ignore[misc]
            total += gone
            if gone < batch:
                break
    await db.run(lambda s: forget_claims(s, now))
    return total
