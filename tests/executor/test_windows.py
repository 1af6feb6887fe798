"""Maintenance windows: days, edges, windows crossing midnight, time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.executor.plans.windows import InvalidWindow, Window, inside

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


NIGHTS = Window.parse("Mon-Fri 22:00-06:00 Europe/Berlin")


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-11-30 21:59:59", False),  # Monday, one second before it opens
    ("2026-11-30 22:00:00", True),  # opens on the minute
    ("2026-12-01 05:59:59", True),  # Tuesday morning: Monday's window
    ("2026-12-01 06:00:00", False),  # closes on the minute
    ("2026-12-04 23:30:00", True),  # Friday night
    ("2026-12-05 05:00:00", True),  # Saturday morning: still Friday's window
    ("2026-12-05 22:30:00", False),  # Saturday night: no window opens on Saturday
    ("2026-12-06 23:00:00", False),  # Sunday night
    ("2026-11-30 03:00:00", False),  # Monday morning: Sunday opened none
    ("2026-11-30 12:00:00", False),
])
def test_nights_on_weekdays_cross_midnight(moment: str, expected: bool) -> None:
    assert NIGHTS.contains(at(moment)) is expected


def test_the_zone_decides_not_utc() -> None:
    # 21:30 UTC on a Monday in winter is 22:30 in Berlin: inside; in UTC terms it would not be.
    assert NIGHTS.contains(datetime(2026, 11, 30, 21, 30, tzinfo=UTC))
    assert not Window.parse("Mon-Fri 22:00-06:00").contains(
        datetime(2026, 11, 30, 21, 30, tzinfo=UTC))
    new_york = Window.parse("Sat 01:00-03:00 America/New_York")
    # Saturday 01:30 in New York is Saturday 06:30 UTC (winter).
    assert new_york.contains(datetime(2026, 12, 5, 6, 30, tzinfo=UTC))
    assert not new_york.contains(datetime(2026, 12, 5, 1, 30, tzinfo=UTC))


def test_wall_clock_times_hold_across_dst_changes() -> None:
    window = Window.parse("Sun 01:00-04:00 Europe/Berlin")
    # 29 March 2026: clocks go from 02:00 CET to 03:00 CEST, the window lasts two hours.
    assert window.contains(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))  # 01:30 CET
    assert window.contains(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST
    assert not window.contains(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 04:00 CEST
    assert window.closes_after(datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == \
        datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    # 25 October 2026: 03:00 CEST becomes 02:00 CET, the window lasts four hours.
    assert window.contains(datetime(2026, 10, 25, 2, 30, tzinfo=UTC))  # 03:30 CET
    assert not window.contains(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))  # 04:00 CET
    assert window.closes_after(datetime(2026, 10, 24, 23, 30, tzinfo=UTC)) == \
        datetime(2026, 10, 25, 3, 0, tzinfo=UTC)


def test_day_forms() -> None:
    assert Window.parse("Sat,Sun 00:00-24:00").days == frozenset({5, 6})
    assert Window.parse("Fri-Mon 10:00-11:00").days == frozenset({4, 5, 6, 0})
    assert Window.parse("Mon,Wed-Fri 10:00-11:00").days == frozenset({0, 2, 3, 4})
    assert Window.parse("10:00-11:00").days == frozenset(range(7))
    assert Window.parse("daily 10:00-11:00 UTC").days == frozenset(range(7))
    whole = Window.parse("Sat 00:00-24:00 UTC")
    assert whole.contains(datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC))
    assert not whole.contains(datetime(2026, 12, 6, 0, 0, tzinfo=UTC))


def test_no_windows_means_always_and_several_mean_any() -> None:
    moment = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # Saturday noon
    assert inside((), moment)
    windows = (NIGHTS, Window.parse("Sat,Sun 08:00-18:00 UTC"))
    assert inside(windows, moment)
    assert not inside(windows, datetime(2026, 12, 5, 19, 0, tzinfo=UTC))


@pytest.mark.parametrize(("text", "message"), [
    ("Mon-Fri 22:00-06:00 Europe/Berln", "unknown time zone 'Europe/Berln'"),
    ("Mon-Fry 22:00-06:00", "unknown day"),
    ("Mon 25:00-06:00", "not a time of day"),
    ("Mon 22:61-06:00", "not a time of day"),
    ("Mon 24:00-06:00", "cannot open at 24:00"),
    ("nightly please", "not a maintenance window"),
])
def test_bad_windows_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidWindow, match=message):
        Window.parse(text)
