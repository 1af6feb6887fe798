"""Checking cron expressions and time zones the way the evaluator will use them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

# An expression must fire within this many years. It bounds croniter's search for a date that
# never comes (Feb 30, a fifth Friday between the 10th and the 28th): its default of 50 years
# cost up to 10 ms of CPU per upload, this about 2 ms. Feb 29 still fits.
HORIZON_YEARS = 8


def check_cron(expr: str | None) -> str | None:
    """A five-field expression (or ``@daily`` and friends) that fires within the horizon."""
    if expr is None:
        return None
    expr = " ".join(expr.split())
    if not expr.startswith("@") and len(expr.split(" ")) != 5:
        raise ValueError("cron needs five fields: minute hour day-of-month month day-of-week")
    try:
        it = croniter(expr, datetime.now(UTC), max_years_between_matches=HORIZON_YEARS)
        it.get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"cron expression never fires (within {HORIZON_YEARS} years)") from exc
    except Exception as exc:  # croniter raises a zoo of types for bad input
        raise ValueError(f"invalid cron expression: {exc}") from exc
    return expr


def check_timezone(name: str | None) -> str | None:
    """An IANA zone name such as ``Europe/Berlin``."""
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        hint = "use an IANA name like 'Europe/Berlin'"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc
    return name
