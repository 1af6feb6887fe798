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
    found: dict[tuple[str, date], DayCell] = {}
    ids = list(dict.fromkeys(job_ids))
    for start in range(0, len(ids), _CHUNK):
        for row in session.execute(sql_select(table).where(
                table.c.job_id.in_(ids[start:start + _CHUNK]),
                table.c.day >= days[0], table.c.day <= days[-1])).mappings():
            found[(row["job_id"], row["day"])] = DayCell(
                day=row["day"], successes=row["successes"], failures=row["failures"],
                warnings=row["warnings"], missed=row["missed"],
                bytes_transferred=row["bytes_transferred"],
                duration_seconds=row["duration_seconds"])
    return {job_id: [found.get((job_id, day)) or DayCell(day) for day in days]
            for job_id in ids}
