"""Due times from cron + IANA time zone or interval, including daylight-saving changes."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from shared import schedules
from shared.schedules import MAX_PER_WINDOW, InvalidSchedule, Schedule

ZURICH = ZoneInfo("Europe/Zurich")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZURICH)


def occurrences(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    out, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out


def test_weekdays_0200_zurich_across_spring_forward() -> None:
    weekdays = Schedule(cron="0 2 * * 1-5", timezone="Europe/Zurich")
    # 2026-03-29 (Sunday) clocks jump 02:00 → 03:00; Friday before is CET, Monday after CEST.
    due = occurrences(weekdays, local(2026, 3, 26, 12, 0), 3)
    assert [d.astimezone(ZURICH).strftime("%a %H:%M %Z") for d in due] == [
        "Fri 02:00 CET", "Mon 02:00 CEST", "Tue 02:00 CEST"]
    assert due[0] == utc(2026, 3, 27, 1, 0)
    assert due[1] == utc(2026, 3, 30, 0, 0)


def test_weekdays_0200_zurich_across_fall_back() -> None:
    weekdays = Schedule(cron="0 2 * * 1-5", timezone="Europe/Zurich")
    due = occurrences(weekdays, local(2026, 10, 23, 12, 0), 2)  # change on Sun 2026-10-25
    assert due == [utc(2026, 10, 26, 1, 0), utc(2026, 10, 27, 1, 0)]


def test_time_inside_the_spring_gap_is_due_after_it() -> None:
    daily = Schedule(cron="30 2 * * *", timezone="Europe/Zurich")
    due = daily.next_after(local(2026, 3, 28, 12, 0))
    assert due.astimezone(ZURICH).strftime("%m-%d %H:%M") == "03-29 03:30"
    assert daily.next_after(due).astimezone(ZURICH).strftime("%m-%d %H:%M") == "03-30 02:30"


def test_repeated_hour_in_the_fall_is_due_once() -> None:
    daily = Schedule(cron="30 2 * * *", timezone="Europe/Zurich")
    due = occurrences(daily, local(2026, 10, 24, 12, 0), 2)
    assert due[0] == utc(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    assert due[1] == utc(2026, 10, 26, 1, 30)  # next day, CET
    assert due[1] - due[0] == timedelta(hours=25)


def test_hourly_cron_has_no_duplicates_around_the_gap() -> None:
    half_hourly = Schedule(cron="*/30 * * * *", timezone="Europe/Zurich")
    due = occurrences(half_hourly, utc(2026, 3, 28, 23, 0), 8)
    assert due == sorted(set(due))
    assert all(b > a for a, b in itertools.pairwise(due))


def test_interval_and_period() -> None:
    every = Schedule(interval_seconds=900)
    assert every.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 15)
    assert every.period_after(utc(2026, 1, 1)) == timedelta(minutes=15)
    nightly = Schedule(cron="0 2 * * *", timezone="Europe/Zurich")
    assert nightly.period_after(local(2026, 3, 28, 12)) == timedelta(hours=23)


def test_next_after_is_strict() -> None:
    hourly = Schedule(cron="0 * * * *")
    assert hourly.next_after(utc(2026, 1, 1, 5, 0)) == utc(2026, 1, 1, 6, 0)


def test_far_future_beyond_the_cached_window() -> None:
    yearly = Schedule(cron="0 0 1 1 *")
    assert yearly.next_after(utc(2026, 1, 2)) == utc(2027, 1, 1)


@pytest.mark.parametrize("kwargs", [
    {"cron": "not a cron"}, {"cron": "0 2 * * *", "timezone": "Mars/Olympus"},
    {}, {"interval_seconds": 0}, {"cron": "0 2 * * *", "interval_seconds": 60},
])
def test_invalid_schedules_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSchedule):
        Schedule(**kwargs)  # type: ignore[arg-type]


def croniter_steps(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts croniter's steps (one per candidate occurrence) from now on."""
    count = 0
    original = croniter.get_next

    def counting(self: croniter, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(croniter, "get_next", counting)
    return lambda: count


def test_a_per_minute_cron_costs_one_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each distinct (cron, zone) is a new cache entry: a per-minute one used to expand 23,040
    occurrences (1.3 MB, 0.3 s) per upload."""
    steps = croniter_steps(monkeypatch)
    minutely = Schedule(cron="0-59 * * * *", timezone="Pacific/Kiritimati")
    moment = utc(2026, 5, 5, 10, 17)
    assert minutely.next_after(moment) == utc(2026, 5, 5, 10, 18)
    assert minutely.period_after(moment) == timedelta(minutes=1)
    assert steps() <= MAX_PER_WINDOW + 1


def test_distinct_per_minute_crons_keep_little_memory() -> None:
    zones = ["Asia/Kathmandu", "America/St_Johns", "Asia/Tehran", "Pacific/Marquesas"]
    variants = ["* */1 * * *", "*/1 0-23 * * *", "0-59/1 * * * *", "* * */1 * *", "* * * */1 *"]
    moment = utc(2026, 7, 1, 12, 0)
    tracemalloc.start()
    try:
        for zone, cron in itertools.product(zones, variants):
            Schedule(cron=cron, timezone=zone).next_after(moment)
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained / (len(zones) * len(variants)) < 16 * 1024


def test_a_window_cut_short_falls_back_to_walking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap holds even if an expression fires more often than its window length assumed."""
    monkeypatch.setattr(schedules, "MAX_PER_WINDOW", 5)
    minutely = Schedule(cron="* * * * *", timezone="Asia/Kathmandu")
    assert occurrences(minutely, utc(2026, 5, 5, 10, 0), 12) == [
        utc(2026, 5, 5, 10, minute) for minute in range(1, 13)]


def test_dense_and_sparse_expressions_agree_across_window_edges() -> None:
    nightly = Schedule(cron="0 2 * * *", timezone="Europe/Zurich")
    half_hourly = Schedule(cron="*/30 * * * *", timezone="Europe/Zurich")
    start = local(2026, 3, 20)
    nights = occurrences(nightly, start, 40)
    assert [b - a for a, b in itertools.pairwise(nights)].count(timedelta(hours=23)) == 1
    halves = occurrences(half_hourly, start, 40 * 48)
    assert all(b > a for a, b in itertools.pairwise(halves))
    assert set(nights) <= set(halves)


def test_more_than_five_fields_are_refused() -> None:
    with pytest.raises(InvalidSchedule, match="five fields"):
        Schedule(cron="* * * * * *")  # seconds: 60 occurrences a minute
