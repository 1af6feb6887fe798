"""Checking cron expressions and time zones the way the evaluator will use them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


def check_cron(expr: str | None) -> str | None:
    """A five-field expression (or ``@daily`` and friends) that fires at least once."""
    if expr is None:
        return None
    expr = " ".join(expr.split())
    if not expr.startswith("@") and len(expr.split(" ")) != 5:
        raise ValueError("cron needs five fields: minute hour day-of-month month day-of-week")
    try:
        croniter(expr, datetime(2026, 1, 1, tzinfo=UTC)).get_next(datetime)
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
