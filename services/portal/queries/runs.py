"""A job's runs, newest first, a page at a time: by keyset (``before`` the last row shown, for
a long history) or by offset (numbered pages). Both walk the (job, time, id) index."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.history.tables import HistoryRun
from shared.db import aware, core_table
from shared.scopes import Scope
from shared.tenancy import Account, Job

MAX_PAGE = 500
_RUNS = core_table(HistoryRun)


class InvalidCursor(ValueError):
    """A ``before`` cursor that this code did not hand out."""


@dataclass(frozen=True)
class RunRow:
    run_id: int  # the history's id of the run (not the client's run id)
    client_run_id: str | None
    job_id: str
    account_id: str
    customer_id: str
    reseller_id: str
    status: str
    at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    bytes_transferred: int | None
    files_transferred: int | None
    error_count: int | None
    exit_code: int | None
    message: str | None
    log_excerpt: str | None
    client_name: str | None
    client_version: str | None
    source: str


@dataclass(frozen=True)
class RunPage:
    items: list[RunRow]
    total: int  # the job's runs in the history
    offset: int
    limit: int
    next_cursor: str | None  # ``before`` for the next (older) page; None: this is the last


def cursor_of(row: RunRow) -> str:
    raw = f"{row.at.isoformat()}|{row.run_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, row_id = raw.split("|")
        return aware(datetime.fromisoformat(at)), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(f"not a cursor: {cursor!r}") from exc


def job_visible(session: Session, scope: Scope, job_id: str) -> bool:
    jobs, accounts = core_table(Job), core_table(Account)
    return session.execute(
        sql_select(jobs.c.id).join(accounts, accounts.c.id == jobs.c.account_id).where(
            jobs.c.id == job_id, scope.where(accounts.c.reseller_id, accounts.c.customer_id))
    ).first() is not None


def runs_of_job(session: Session, scope: Scope, job_id: str, *, limit: int = 50,
                offset: int = 0, before: str | None = None) -> RunPage | None:
    """The job's runs, newest first; None when the job is not in ``scope``."""
    if not 0 < limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if not job_visible(session, scope, job_id):
        return None
    mine = and_(_RUNS.c.job_id == job_id, scope.where(_RUNS.c.reseller_id, _RUNS.c.customer_id))
    # The job is in scope, and so are its runs: counted from the index alone.
    total = session.execute(sql_select(func.count()).select_from(_RUNS).where(
        _RUNS.c.job_id == job_id)).scalar_one()
    statement = sql_select(_RUNS).where(mine)
    if before is not None:
        at, row_id = _parse_cursor(before)
        statement = statement.where(or_(_RUNS.c.at < at, and_(_RUNS.c.at == at,
                                                               _RUNS.c.id < row_id)))
    else:
        statement = statement.offset(offset)
    statement = statement.order_by(_RUNS.c.at.desc(), _RUNS.c.id.desc()).limit(limit + 1)
    rows = [_row(row) for row in session.execute(statement).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(rows, total, offset if before is None else 0, limit,
                   cursor_of(rows[-1]) if more and rows else None)


def run_of(session: Session, scope: Scope, run_id: int) -> RunRow | None:
    """One run by its history id; None when not in ``scope``."""
    row = session.execute(sql_select(_RUNS).where(
        _RUNS.c.id == run_id, scope.where(_RUNS.c.reseller_id, _RUNS.c.customer_id))
    ).mappings().first()
    return _row(row) if row is not None else None


def _row(row: object) -> RunRow:
    values = dict(row)  # type: ignore[call-overload]
    return RunRow(
        run_id=values["id"], client_run_id=values["run_id"], job_id=values["job_id"],
        account_id=values["account_id"], customer_id=values["customer_id"],
        reseller_id=values["reseller_id"], status=values["status"], at=values["at"],
        started_at=values["started_at"], finished_at=values["finished_at"],
        duration_seconds=values["duration_seconds"],
        bytes_transferred=values["bytes_transferred"],
        files_transferred=values["files_transferred"], error_count=values["error_count"],
        exit_code=values["exit_code"], message=values["message"],
        log_excerpt=values["log_excerpt"], client_name=values["client_name"],
        client_version=values["client_version"], source=values["source"])
