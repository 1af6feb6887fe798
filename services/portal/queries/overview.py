"""The overview: every job in scope (customer → account → job) with its state, last run, next
due time and 30-day strip; counts per state; filtered by state, customer and text; worst first;
paged.

Two statements over jobs ⋈ accounts ⋈ customers ⋈ resellers ⟕ job_states (the scope and the
filters in their WHERE, the state a CASE the database sorts and groups by), then the page's day
cells by primary key: the cost grows with the jobs in scope, never with their runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Select, func, literal, or_
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.evaluator.tables import JobState
from services.portal.queries.days import DayCell, strip_days, strips
from services.portal.queries.states import (
    STATES,
    JobStatus,
    Silenced,
    rank_of,
    silenced,
)
from shared.db import aware, core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job, Reseller

MAX_PAGE = 500

_JOBS, _ACCOUNTS, _CUSTOMERS = core_table(Job), core_table(Account), core_table(Customer)
_RESELLERS, _STATES = core_table(Reseller), core_table(JobState)


class InvalidFilter(ValueError):
    """A filter names an unknown state or a page size out of range."""


@dataclass(frozen=True)
class OverviewFilter:
    states: frozenset[str] = frozenset()  # empty: every state
    customer_id: str | None = None
    account_id: str | None = None
    text: str = ""  # in the job's, account's or customer's name, any case
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.states) - set(STATES)
        if unknown:
            raise InvalidFilter(f"unknown state(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(STATES)}")
        if not 0 < self.limit <= MAX_PAGE:
            raise InvalidFilter(f"limit must be between 1 and {MAX_PAGE}")
        if self.offset < 0:
            raise InvalidFilter("offset must not be negative")


@dataclass(frozen=True)
class JobRow:
    """A job as the overview (and every job listing) shows it."""

    job_id: str
    job_name: str
    account_id: str
    account_name: str
    customer_id: str
    customer_name: str
    reseller_id: str
    reseller_name: str
    state: JobStatus
    last_status: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    next_due_at: datetime | None
    running_since: datetime | None
    consecutive_failures: int
    consecutive_misses: int
    days: list[DayCell] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    rows: list[JobRow]
    total: int  # rows matching the filter (all pages)
    counts: dict[str, int]  # per state, over the scope and every filter but the state
    offset: int
    limit: int


def overview(session: Session, scope: Scope, now: datetime,
             where: OverviewFilter | None = None, *, with_days: bool = True) -> Overview:
    where = where or OverviewFilter()
    paused = silenced(session, now)
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for rank, count in session.execute(_counts(scope, where, paused)):
        counts[STATES[rank]] = count
    chosen = [s for s in STATES if s in where.states] if where.states else list(STATES)
    total = sum(counts[s] for s in chosen)
    page = _jobs(scope, where, paused)
    rank = page.selected_columns.rank
    if where.states:
        page = page.where(rank.in_([STATES.index(s) for s in chosen]))
    page = page.order_by(rank, _CUSTOMERS.c.name, _ACCOUNTS.c.name, _JOBS.c.name,
                         _JOBS.c.id).limit(where.limit).offset(where.offset)
    rows = [_row(row) for row in session.execute(page).mappings()]
    if with_days and rows:
        cells = strips(session, [row.job_id for row in rows], strip_days(now))
        rows = [replace(row, days=cells[row.job_id]) for row in rows]
    return Overview(rows, total, counts, where.offset, where.limit)


def job_row(session: Session, scope: Scope, job_id: str, now: datetime) -> JobRow | None:
    """One job in scope (with its strip); None when it does not exist or is not visible."""
    statement = _jobs(scope, OverviewFilter(), silenced(session, now)).where(
        _JOBS.c.id == job_id)
    found = session.execute(statement).mappings().first()
    if found is None:
        return None
    return replace(_row(found), days=strips(session, [job_id], strip_days(now))[job_id])


def _jobs(scope: Scope, where: OverviewFilter, paused: Silenced) -> Select:  # type: ignore[type-arg]
    """Every job in scope matching ``where`` (but its states), with its names and state (as
    its rank in :data:`STATES`: SQLite compares integers much faster than the states' text)."""
    statement = (
        sql_select(
            _JOBS.c.id.label("job_id"), _JOBS.c.name.label("job_name"),
            _ACCOUNTS.c.id.label("account_id"), _ACCOUNTS.c.name.label("account_name"),
            _CUSTOMERS.c.id.label("customer_id"), _CUSTOMERS.c.name.label("customer_name"),
            _RESELLERS.c.id.label("reseller_id"), _RESELLERS.c.name.label("reseller_name"),
            rank_of(_STATES, _ACCOUNTS, paused).label("rank"), _STATES.c.last_status,
            _STATES.c.last_run_at,
            _STATES.c.last_success_at, _STATES.c.next_due_at, _STATES.c.running_since,
            func.coalesce(_STATES.c.consecutive_failures, literal(0)).label(
                "consecutive_failures"),
            func.coalesce(_STATES.c.consecutive_misses, literal(0)).label("consecutive_misses"),
        )
        .select_from(_JOBS)
        .join(_ACCOUNTS, _ACCOUNTS.c.id == _JOBS.c.account_id)
        .join(_CUSTOMERS, _CUSTOMERS.c.id == _ACCOUNTS.c.customer_id)
        .join(_RESELLERS, _RESELLERS.c.id == _ACCOUNTS.c.reseller_id)
        .outerjoin(_STATES, _STATES.c.job_id == _JOBS.c.id)
    )
    return _filtered(statement, scope, where)


def _counts(scope: Scope, where: OverviewFilter, paused: Silenced) -> Select:  # type: ignore[type-arg]
    """Jobs per state (its rank); joins only what the filters need (customers' names for a
    text search)."""
    rank = rank_of(_STATES, _ACCOUNTS, paused)
    statement = (sql_select(rank, func.count()).select_from(_JOBS)
                 .join(_ACCOUNTS, _ACCOUNTS.c.id == _JOBS.c.account_id)
                 .outerjoin(_STATES, _STATES.c.job_id == _JOBS.c.id))
    if where.text.strip():
        statement = statement.join(_CUSTOMERS, _CUSTOMERS.c.id == _ACCOUNTS.c.customer_id)
    return _filtered(statement, scope, where).group_by(rank)


def _filtered(statement: Select, scope: Scope, where: OverviewFilter) -> Select:  # type: ignore[type-arg]
    statement = statement.where(scope.where(_ACCOUNTS.c.reseller_id, _ACCOUNTS.c.customer_id))
    if where.customer_id is not None:
        statement = statement.where(_ACCOUNTS.c.customer_id == where.customer_id)
    if where.account_id is not None:
        statement = statement.where(_ACCOUNTS.c.id == where.account_id)
    text = where.text.strip().lower()
    if text:
        statement = statement.where(or_(*(
            func.lower(column).contains(text, autoescape=True)
            for column in (_JOBS.c.name, _ACCOUNTS.c.name, _CUSTOMERS.c.name))))
    return statement


def _row(row: object) -> JobRow:
    values = dict(row)  # type: ignore[call-overload]
    values["state"] = STATES[values.pop("rank")]
    for name in ("last_run_at", "last_success_at", "next_due_at", "running_since"):
        if values[name] is not None:
            values[name] = aware(values[name])
    return JobRow(**values)
