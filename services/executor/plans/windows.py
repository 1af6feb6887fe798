"""Maintenance windows: ``Mon-Fri 22:00-06:00 Europe/Berlin``.

A window opens on each of its days at the start time and closes at the end time; an end at or
before the start is on the next day (``22:00-06:00`` opened on Friday closes on Saturday
morning), ``00:00-24:00`` is the whole day. Times are wall-clock times in the window's zone
(UTC when none is given), compared as the wall clock shows them: across a DST change the
window still opens and closes at the written local times (it is one hour shorter or longer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORM = re.compile(
    r"\s*(?:(?P<days>[A-Za-z*][A-Za-z,\-*]*)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*"
    r"(?P<end>\d{1,2}:\d{2})(?:\s+(?P<zone>\S+))?\s*")


class InvalidWindow(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # weekday numbers (Monday 0) the window opens on
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight of the closing day (1440: midnight)
    zone: str = "UTC"
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Window:
        match = _FORM.fullmatch(text)
        if match is None:
            raise InvalidWindow(f"not a maintenance window: {text!r} (e.g. 'Mon-Fri 22:00-06:00 "
                                "Europe/Berlin')")
        days = _days(match.group("days") or "*", text)
        start, end = _minutes(match.group("start"), text), _minutes(match.group("end"), text)
        if start == 1440:
            raise InvalidWindow(f"a window cannot open at 24:00: {text!r}")
        zone = match.group("zone") or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidWindow(f"unknown time zone {zone!r} in window {text!r}") from exc
        return cls(days, start, end, zone, text.strip())

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, moment: datetime) -> bool:
        """Is ``moment`` (aware) inside the window?"""
        local = moment.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        today = local.weekday()
        if self.crosses_midnight:
            opened_today = today in self.days and minute >= self.start
            opened_yesterday = (today - 1) % 7 in self.days and minute < self.end
            return opened_today or opened_yesterday
        return today in self.days and self.start <= minute < self.end

    def closes_after(self, moment: datetime) -> datetime | None:
        """When the window that holds ``moment`` closes (UTC); None when it does not hold it."""
        if not self.contains(moment):
            return None
        zone = ZoneInfo(self.zone)
        local = moment.astimezone(zone).replace(tzinfo=None)
        day = local.date()
        if self.crosses_midnight and local.hour * 60 + local.minute >= self.start:
            day += timedelta(days=1)
        end = datetime.combine(day, time()) + timedelta(minutes=self.end)
        return end.replace(tzinfo=zone).astimezone(UTC)


def _days(text: str, whole: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        if part in ("*", "daily", "all"):
            out.update(range(7))
            continue
        first, _, last = part.partition("-")
        try:
            a = DAYS.index(first[:3]) if len(first) >= 3 else -1
            b = DAYS.index(last[:3]) if last else a
        except ValueError:
            a = b = -1
        if a < 0 or (last and len(last) < 3):
            raise InvalidWindow(f"unknown day {part!r} in window {whole!r} (Mon, Tue, … Sun, "
                                "ranges such as Mon-Fri, lists such as Sat,Sun)")
        day = a
        while True:  # Fri-Mon wraps over the weekend
            out.add(day)
            if day == b:
                break
            day = (day + 1) % 7
    return frozenset(out)


def _minutes(text: str, whole: str) -> int:
    hours, minutes = (int(x) for x in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise InvalidWindow(f"not a time of day: {text!r} in window {whole!r}")
    return hours * 60 + minutes


def inside(windows: tuple[Window, ...], moment: datetime) -> bool:
    """No windows: always; else inside any one of them."""
    return not windows or any(w.contains(moment) for w in windows)
