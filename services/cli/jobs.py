"""``backstop jobs``: every job with its state, last run, next due time and last 30 days, and
one job's schedule and thresholds in force (the portal's overview and job page, for every
tenant)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, fail, refusing
from services.portal.queries.days import DayCell
from services.portal.queries.jobs import job_detail
from services.portal.queries.overview import (
    MAX_PAGE,
    InvalidFilter,
    JobRow,
    OverviewFilter,
    overview,
)
from services.portal.queries.states import STATES
from shared.events import utcnow
from shared.scopes import Scope

app = typer.Typer(no_args_is_help=True, help="Backup jobs: state, last run, next due time.")

# The 30-day strip in a terminal: one character a day, oldest first.
STRIP = {"success": "+", "warning": "w", "failure": "x", "missed": "m", "none": "."}
COLUMNS = ["job_id", "state", "customer", "account", "job", "last_run_at", "last_status",
           "next_due_at", "last_30_days"]


@app.command("list")
def list_jobs(
    state: list[str] = typer.Option(
        [], help=f"Only jobs in this state ({', '.join(STATES)}); repeat for several."),
    customer: str = typer.Option(None, help="Only this customer's jobs (customer id)."),
    account: str = typer.Option(None, help="Only this account's jobs (account id)."),
    search: str = typer.Option("", help="Only jobs whose job, account or customer name "
                               "contains this (any case)."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Every job, worst first (failing, late, never run, running, paused, ok); the last 30
    days one character a day: + success, w warning, x failure, m missed, . nothing."""
    now = utcnow()
    with refusing(InvalidFilter):
        where = OverviewFilter(states=frozenset(state), customer_id=customer,
                               account_id=account, text=search,
                               limit=min(limit or MAX_PAGE, MAX_PAGE), offset=offset)
    rows: list[JobRow] = []
    with database().session() as session:
        while True:  # pages of at most MAX_PAGE until the limit (0: all) is reached
            seen = overview(session, Scope.everything(), now, where)
            rows += seen.rows
            wanted = limit - len(rows) if limit else seen.total - offset - len(rows)
            if not seen.rows or wanted <= 0:
                break
            where = OverviewFilter(states=where.states, customer_id=customer,
                                   account_id=account, text=search,
                                   limit=min(wanted, MAX_PAGE), offset=offset + len(rows))
    page = tables.Page(rows=[_listed(row, as_json) for row in rows], total=seen.total,
                       offset=offset, limit=limit)
    tables.emit(page, COLUMNS, as_json=as_json)


def _listed(row: JobRow, as_json: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job_id": row.job_id, "state": row.state, "reseller": row.reseller_name,
        "customer": row.customer_name, "account": row.account_name, "job": row.job_name,
        "last_run_at": row.last_run_at, "last_status": row.last_status,
        "next_due_at": row.next_due_at,
        "last_30_days": "".join(STRIP[cell.outcome] for cell in row.days),
    }
    if as_json:
        out.update(reseller_id=row.reseller_id, customer_id=row.customer_id,
                   account_id=row.account_id, last_success_at=row.last_success_at,
                   running_since=row.running_since, days=[_day(cell) for cell in row.days])
    return out


def _day(cell: DayCell) -> dict[str, Any]:
    return {**asdict(cell), "outcome": cell.outcome}


@app.command()
def show(
    job_id: str = typer.Argument(..., help="The job's id (`backstop jobs list` shows it)."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """One job: its state, schedule and next due times, the thresholds in force and where each
    comes from, and its open alerts."""
    now = utcnow()
    with database().session() as session:
        detail = job_detail(session, Scope.everything(), job_id, now)
    if detail is None:
        raise fail(f"no job {job_id!r}")
    job = detail.job
    if as_json:
        out = asdict(detail)
        out["job"]["days"] = [_day(cell) for cell in job.days]
        typer.echo(json.dumps(out, default=tables.json_value))
        return
    for label, value in (
        ("job", f"{job.job_name} ({job.job_id})"),
        ("account", f"{job.account_name} ({job.account_id})"),
        ("customer", f"{job.customer_name} ({job.customer_id})"),
        ("reseller", f"{job.reseller_name} ({job.reseller_id})"),
        ("state", job.state), ("last run", f"{tables.cell(job.last_run_at)} "
                                            f"({tables.cell(job.last_status)})"),
        ("last success", tables.cell(job.last_success_at)),
        ("schedule", detail.schedule or "none known"),
        ("next due", ", ".join(tables.cell(at) for at in detail.next_due) or "-"),
        ("run too long", detail.max_runtime),
        ("last 30 days", "".join(STRIP[cell.outcome] for cell in job.days)),
    ):
        typer.echo(f"{label:13} {tables.cell(value)}")
    typer.echo("")
    typer.echo(tables.render([{"setting": t.name, "value": t.value, "from": t.source}
                              for t in detail.thresholds], ["setting", "value", "from"]))
    if detail.alerts:
        typer.echo("")
        typer.echo(tables.render([asdict(a) for a in detail.alerts],
                                 ["alert_id", "kind", "severity", "first_seen", "summary"],
                                 capped={"summary"}))
