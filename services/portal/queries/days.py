"""The 30-day strip: one cell a day per job, read from the pre-aggregated day cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.history.runs import day_of
from services.portal.history.tables import HistoryDayCell
from shared.db import core_table

STRIP_DAYS = 30
_CHUNK = 500

Outcome = Literal["failure", "missed", "warning", "success", "none"]


@dataclass(frozen=True)
class DayCell:
    day: date
    successes: int = 0
    failures: int = 0
    warnings: int = 0
    missed: int = 0
    bytes_transferred: int = 0
    duration_seconds: float = 0.0

    @property
    def outcome(self) -> Outcome:
        """The day in one word, the worst that happened: a failure, a missed run, a warning,
        a success, or nothing."""
        if self.failures:
            return "failure"
        if self.missed:
            return "missed"
        if self.warnings:
            return "warning"
        if self.successes:
            return "success"
        return "none"


def strip_days(now: datetime, days: int = STRIP_DAYS) -> list[date]:
    """The strip's days, oldest first, ending today (UTC)."""
    today = day_of(now)
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def strips(session: Session, job_ids: Sequence[str], days: list[date]
           ) -> dict[str, list[DayCell]]:
    """Each job's cells over ``days`` (a cell for every day, empty where nothing happened).
    The jobs were already scoped by the caller; the read is by primary key."""
    table = core_table(HistoryDayCell)
    empty = {day: DayCell(day) for day in days}
    found: dict[str, dict[date, DayCell]] = {job_id: {} for job_id in job_ids}
    ids = list(found)
    for start in range(0, len(ids), _CHUNK):
        for job_id, day, *counts in session.execute(sql_select(
                table.c.job_id, table.c.day, table.c.successes, table.c.failures,
                table.c.warnings, table.c.missed, table.c.bytes_transferred,
                table.c.duration_seconds).where(
                table.c.job_id.in_(ids[start:start + _CHUNK]),
                table.c.day >= days[0], table.c.day <= days[-1])):
            found[job_id][day] = DayCell(day, *counts)
    return {job_id: [cells.get(day) or empty[day] for day in days]
            for job_id, cells in found.items()}
