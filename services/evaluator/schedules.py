"""Job schedules: when is a run due? Cron in the job's IANA time zone, or a fixed interval.

Cron expressions are expanded in *local wall-clock time* (naive datetimes, so croniter never does
DST arithmetic) and each local time is then placed on the UTC time line with ``zoneinfo``. That is
what makes "weekdays 02:00 Europe/Zurich" mean 02:00 in Zurich both in winter and in summer:

* a local time that does not exist (spring forward, 02:30 on the change day) lands just after the
  gap, as the wall clock would show it (03:30 local);
* a local time that exists twice (fall back) is due once, at its first instance.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shared.events import ScheduleSet

# How far ahead one expansion of a cron expression reaches; lookups inside it are a bisect.
_WINDOW = timedelta(days=16)


class InvalidSchedule(ValueError):
    """The schedule cannot be evaluated (bad cron expression, unknown time zone, no interval)."""


@dataclass(frozen=True)
class Schedule:
    """Either ``cron`` (+ ``timezone``, default UTC) or ``interval_seconds``."""

    cron: str | None = None
    timezone: str = "UTC"
    interval_seconds: int | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_seconds is None):
            raise InvalidSchedule("a schedule needs exactly one of cron or interval_seconds")
        if self.interval_seconds is not None and self.interval_seconds <= 0:
            raise InvalidSchedule("interval_seconds must be positive")
        if self.cron is not None:
            _zone(self.timezone)
            _check_cron(self.cron)

    @classmethod
    def from_event(cls, event: ScheduleSet) -> Schedule:
        return cls(cron=event.cron, timezone=event.timezone or "UTC",
                   interval_seconds=None if event.cron else event.interval_seconds)

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (UTC)."""
        if self.interval_seconds is not None:
            return moment + timedelta(seconds=self.interval_seconds)
        assert self.cron is not None
        return _next_cron(self.cron, self.timezone, moment)

    def period_after(self, moment: datetime) -> timedelta:
        """The gap between the two due times following ``moment``: a run's natural length."""
        if self.interval_seconds is not None:
            return timedelta(seconds=self.interval_seconds)
        first = self.next_after(moment)
        return self.next_after(first) - first

    def describe(self) -> str:
        if self.interval_seconds is not None:
            return f"every {self.interval_seconds}s"
        return f"{self.cron} ({self.timezone})"


@lru_cache(maxsize=4096)
def _check_cron(cron: str) -> None:
    # Parsing is slow and jobs share a handful of expressions: validate each one once.
    if not croniter.is_valid(cron):
        raise InvalidSchedule(f"invalid cron expression {cron!r}")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}") from exc


def _next_cron(cron: str, timezone: str, moment: datetime) -> datetime:
    # Jobs share a handful of expressions, so occurrences are expanded once per window and
    # every job's lookup is a bisect; this keeps 100,000 jobs cheap.
    start = _window_start(moment)
    for window in (start, start + _WINDOW):
        times = _occurrences(cron, timezone, window)
        index = bisect.bisect_right(times, moment)
        if index < len(times):
            return times[index]
    return _expand(cron, timezone, moment, moment + timedelta(days=3660), limit=1)[0]


def _window_start(moment: datetime) -> datetime:
    epoch = datetime(2000, 1, 3, tzinfo=UTC)
    return epoch + ((moment - epoch) // _WINDOW) * _WINDOW


@lru_cache(maxsize=4096)
def _occurrences(cron: str, timezone: str, window: datetime) -> list[datetime]:
    return _expand(cron, timezone, window, window + _WINDOW)


def _expand(
    cron: str, timezone: str, start: datetime, end: datetime, limit: int | None = None
) -> list[datetime]:
    """UTC due times in (start, end], strictly increasing."""
    zone = _zone(timezone)
    # Start a little early in local time: around a fall-back change the local clock repeats.
    local_start = start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    it = croniter(cron, local_start)
    out: list[datetime] = []
    last = start
    while True:
        try:
            local: datetime = it.get_next(datetime)
        except Exception as exc:  # croniter gives up on dates that never come (Feb 30)
            raise InvalidSchedule(f"cron expression {cron!r} never fires: {exc}") from exc
        due = local.replace(tzinfo=zone).astimezone(UTC)
        if due > end:
            if limit is not None and not out:
                raise InvalidSchedule(f"cron expression {cron!r} never fires")
            return out
        if due > last:  # skips repeats created by the gap/fold mapping
            out.append(due)
            last = due
            if limit is not None and len(out) >= limit:
                return out
