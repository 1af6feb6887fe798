"""A run's row from its reports: how a start, its end and later log lines make one row.

Pure data in, data out; :mod:`services.portal.history.projection` reads and writes the rows.
Reports of one run may come in any order (a client retrying a start after its end): a final
status (success, warning, failure) is never replaced by a start, and of two finals the later
report wins. A value a report leaves out keeps what an earlier report of the run said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.events import RunReported
from shared.logtail import log_tail

FINAL = frozenset({"success", "warning", "failure"})
# The report's fields copied to the row as they are (the winning report's value, else the
# other's).
_COPIED = ("duration_seconds", "bytes_transferred", "files_transferred", "error_count",
           "exit_code", "message", "client_name", "client_version", "source")

Row = dict[str, Any]


def run_key(run_id: str | None, event_id: str) -> str:
    """What makes reports one run: the client's run id, else the report itself."""
    return run_id if run_id is not None else f"event:{event_id}"


def absorb(row: Row | None, run: RunReported, excerpt_limit: int) -> Row:
    """``row`` (None: the run's first report) with ``run`` applied; a new dict."""
    if row is None:
        row = {"run_key": run_key(run.run_id, run.event_id), "run_id": run.run_id,
               "status": run.status, "reported_at": run.occurred_at, "at": run.occurred_at,
               "started_at": None, "finished_at": None, "log_excerpt": None,
               **dict.fromkeys(_COPIED)}
        wins = True
    else:
        row = dict(row)
        wins = _wins(row, run)
    newer, older = (_fields_of(run), row) if wins else (row, _fields_of(run))
    for name in _COPIED:
        row[name] = newer[name] if newer[name] is not None else older[name]
    if wins:
        row["status"] = run.status if run.status in FINAL or row["status"] not in FINAL \
            else row["status"]
    row["log_excerpt"] = log_tail(newer["log_excerpt"] or older["log_excerpt"], excerpt_limit)
    started = run.started_at or (run.occurred_at if run.status == "started" else None)
    row["started_at"] = row["started_at"] or started
    if run.status in FINAL:
        row["finished_at"] = (run.finished_at or run.occurred_at) if wins \
            else row["finished_at"] or run.finished_at
    row["reported_at"] = max(row["reported_at"], run.occurred_at)
    if row["duration_seconds"] is None and row["started_at"] and row["finished_at"]:
        row["duration_seconds"] = max(
            0.0, (row["finished_at"] - row["started_at"]).total_seconds())
    row["at"] = when(row)
    return row


def _wins(row: Row, run: RunReported) -> bool:
    """Does ``run`` speak over what ``row`` holds?"""
    if run.status == "started":
        return row["status"] not in FINAL and run.occurred_at >= row["reported_at"]
    return row["status"] not in FINAL or run.occurred_at >= row["reported_at"]


def _fields_of(run: RunReported) -> Row:
    fields = {name: getattr(run, name) for name in _COPIED}
    fields["log_excerpt"] = run.log_excerpt
    return fields


def when(row: Row) -> datetime:
    """The run's time: its start, else its end less its duration, else its end, else when it
    was first reported."""
    if row["started_at"] is not None:
        return row["started_at"]  # type: ignore[no-any-return]
    if row["finished_at"] is not None:
        if row["duration_seconds"]:
            try:
                return row["finished_at"] - timedelta(  # type: ignore[no-any-return]
                    seconds=row["duration_seconds"])
            except OverflowError:
                return row["finished_at"]  # type: ignore[no-any-return]
        return row["finished_at"]  # type: ignore[no-any-return]
    return row["at"]  # type: ignore[no-any-return]


def append_log(row: Row, text: str | None, excerpt_limit: int) -> Row:
    """``row`` with a later log message (a ``/log`` ping) added at the end of its excerpt."""
    if not text:
        return row
    joined = f"{row['log_excerpt']}\n{text}" if row["log_excerpt"] else text
    return {**row, "log_excerpt": log_tail(joined, excerpt_limit)}


@dataclass(frozen=True)
class Tally:
    """What one run adds to its job's day cell."""

    day: date
    successes: int = 0
    failures: int = 0
    warnings: int = 0
    bytes_transferred: int = 0
    duration_seconds: float = 0.0


def day_of(at: datetime) -> date:
    """The UTC day an instant falls on: the day cells' and usage rows' key."""
    return at.astimezone(UTC).date()


def tally(row: Row | None) -> Tally | None:
    """The run's share of its day cell; None until it finished."""
    if row is None or row["status"] not in FINAL:
        return None
    status = row["status"]
    return Tally(
        day=day_of(row["at"]),
        successes=int(status == "success"), failures=int(status == "failure"),
        warnings=int(status == "warning"), bytes_transferred=row["bytes_transferred"] or 0,
        duration_seconds=row["duration_seconds"] or 0.0)
