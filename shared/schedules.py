"""Job schedules: when is a run due? Cron in the job's IANA time zone, or a fixed interval.

Cron expressions are expanded in *local wall-clock time* (naive datetimes, so croniter never does
DST arithmetic) and each local time is then placed on the UTC time line with ``zoneinfo``. That is
what makes "weekdays 02:00 Europe/Zurich" mean 02:00 in Zurich both in winter and in summer:

* a local time that does not exist (spring forward, 02:30 on the change day) lands just after the
  gap, as the wall clock would show it (03:30 local);
* a local time that exists twice (fall back) is due once, at its first instance.

Occurrences are computed lazily, one window of the UTC time line at a time, and the windows are
cached (jobs share a handful of expressions, so 100,000 jobs cost a bisect each). Work and memory
are bounded whatever the expression: a window holds at most ``MAX_PER_WINDOW`` occurrences (its
length is chosen from how often the expression can fire: 16 days for a nightly job, 4 hours for a
per-minute one), a lookup expands at most one window, and at most ``CACHED_WINDOWS`` windows are
kept, least recently used first out.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shared.events import ScheduleSet

# Window lengths, longest first: an expression gets the longest whose occurrences fit.
_DAY = 86_400
_SPANS = (16 * _DAY, 2 * _DAY)
# The shortest window: a five-field expression fires at most once per UTC minute, so 240 at most.
_FINEST = 4 * 3600
MAX_PER_WINDOW = 256
# 4,096 windows of at most 256 occurrences of 8 bytes: about 10 MB with the bookkeeping.
CACHED_WINDOWS = 4096
# A fall-back change repeats local times: expanding from this much earlier finds them all.
_LOOKBACK = timedelta(hours=3)
_EPOCH = int(datetime(2000, 1, 3, tzinfo=UTC).timestamp())


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
            _span(self.cron)

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
def _span(cron: str) -> int:
    """The window length (seconds) for ``cron``: the longest that holds ``MAX_PER_WINDOW``."""
    # Parsing is slow and jobs share a handful of expressions: parse each one once.
    try:
        fields = croniter(cron).expanded
    except Exception as exc:  # croniter raises a zoo of types for bad input
        raise InvalidSchedule(f"invalid cron expression {cron!r}") from exc
    if len(fields) != 5:  # seconds or years would break the once-a-minute bound
        raise InvalidSchedule(f"cron expression {cron!r} needs five fields")
    minutes, hours = (60 if f[0] == "*" else len(f) for f in fields[:2])
    for span in _SPANS:
        # A UTC window touches at most two more local days than it is long (offsets, DST).
        if minutes * hours * (span // _DAY + 2) <= MAX_PER_WINDOW:
            return span
    return _FINEST


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class _Window:
    """The due times (UTC epoch seconds) in one window, and the first one after it."""

    times: array[int]
    following: int | None  # None: the window was cut at MAX_PER_WINDOW (a safety net only)


def _next_cron(cron: str, timezone: str, moment: datetime) -> datetime:
    at = moment.timestamp()
    span = _span(cron)
    start = _EPOCH + int((at - _EPOCH) // span) * span
    window = _window(cron, timezone, start, span)
    index = bisect.bisect_right(window.times, at)
    if index < len(window.times):
        return datetime.fromtimestamp(window.times[index], UTC)
    if window.following is not None:
        return datetime.fromtimestamp(window.following, UTC)
    return _expand(cron, timezone, moment, moment, limit=1)[0]


@lru_cache(maxsize=CACHED_WINDOWS)
def _window(cron: str, timezone: str, start: int, span: int) -> _Window:
    begin = datetime.fromtimestamp(start, UTC)
    end = begin + timedelta(seconds=span)
    due = [int(d.timestamp()) for d in _expand(cron, timezone, begin, end, MAX_PER_WINDOW + 1)]
    if due[-1] <= end.timestamp():  # cut short: later moments are looked up without the cache
        return _Window(array("q", due[:MAX_PER_WINDOW]), None)
    # The last one is past the window: the answer for any moment after the window's last time.
    return _Window(array("q", due[:-1]), due[-1])


def _expand(cron: str, timezone: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """UTC due times after ``start``, strictly increasing: those up to ``end`` and the first one
    past it, or the first ``limit`` of them."""
    zone = _zone(timezone)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    if (start - _LOOKBACK).astimezone(zone).utcoffset() != start.astimezone(zone).utcoffset():
        # Just after a change of offset, local times before ``start``'s may be due after it.
        local_start -= _LOOKBACK
    it = croniter(cron, local_start)
    out: list[datetime] = []
    last = start
    while len(out) < limit:
        try:
            local: datetime = it.get_next(datetime)
        except Exception as exc:  # croniter gives up on dates that never come (Feb 30)
            raise InvalidSchedule(f"cron expression {cron!r} never fires: {exc}") from exc
        due = local.replace(tzinfo=zone).astimezone(UTC)
        if due > last:  # skips repeats created by the gap/fold mapping
            out.append(due)
            last = due
            if due > end:
                break
    return out
