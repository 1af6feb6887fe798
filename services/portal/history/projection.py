"""Applying ingest and alert events to the history tables, one unit of work per batch.

Each batch claims its event ids (:func:`shared.processed.claim_events`) in the same transaction
as its writes, so a redelivered event changes nothing. Runs are merged by :mod:`.runs`; the day
cells move by the difference a run's row made (a start adds nothing, its end adds one success
or failure, a late report that changes the status moves the count), so they always equal what
the runs say, without re-reading them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, bindparam, tuple_
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.history.runs import (
    FINAL,
    Row,
    absorb,
    append_log,
    day_of,
    run_key,
    tally,
)
from services.portal.history.tables import HistoryDayCell, HistoryRun, HistoryUsageDay
from shared.db import core_table
from shared.events import AlertChanged, Event, RunLogged, RunReported, Tenant, UsageReported
from shared.processed import claim_events
from shared.tenancy import Job, get_or_create_job

INGEST_CONSUMER = "portal-history"
ALERTS_CONSUMER = "portal-history-alerts"
# The evaluator's kind of a missed run alert (services/evaluator/missed.py: KIND).
MISSED_KIND = "missed_run"
# A report without a run id ends the job's open start without one (a ping's /start, then its
# success), if that start is the job's latest run and at most this old.
OPEN_START_WINDOW = timedelta(hours=24)
_CHUNK = 500

_RUNS = core_table(HistoryRun)
_CELLS = core_table(HistoryDayCell)
_USAGE = core_table(HistoryUsageDay)
_COUNTS = ("successes", "failures", "warnings", "missed", "bytes_transferred",
           "duration_seconds")
_RUN_COLUMNS = [c.name for c in _RUNS.columns if c.name != "id"]


@dataclass
class _Cell:
    tenant: Tenant
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))


@dataclass
class _Batch:
    """What one unit of work read and changed."""

    session: Session
    excerpt_limit: int
    job_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)  # (job id, run key)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    # Each job's latest stored run, read once per batch (None: it has none).
    stored_latest: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    cells: dict[tuple[str, date], _Cell] = field(default_factory=dict)
    usage: dict[tuple[str, date], Row] = field(default_factory=dict)

    def cell(self, job_id: str, day: date, tenant: Tenant) -> _Cell:
        return self.cells.setdefault((job_id, day), _Cell(tenant))


def apply_ingest(session: Session, events: list[Event], excerpt_limit: int) -> int:
    """Apply a batch of ingest events (runs, log lines, usage) in stream order; returns how
    many were new (the others were applied before)."""
    fresh = claim_events(session, INGEST_CONSUMER, [event.event_id for event in events])
    todo = [event for event in events if event.event_id in fresh]
    if not todo:
        return 0
    batch = _Batch(session, excerpt_limit)
    _find_jobs(batch, [e for e in todo if isinstance(e, RunReported | RunLogged)])
    _load_runs(batch, [e for e in todo if isinstance(e, RunReported)])
    for event in todo:
        if isinstance(event, RunReported):
            _on_run(batch, event)
        elif isinstance(event, RunLogged):
            _on_log(batch, event)
        elif isinstance(event, UsageReported):
            _on_usage(batch, event)
    _save_runs(batch)
    _save_cells(session, batch.cells)
    _save_usage(session, batch.usage)
    return len(todo)


def apply_alert(session: Session, event: Event) -> bool:
    """Count a missed run into its job's day cell when a missed-run alert fires; returns
    whether the event was new."""
    if not claim_events(session, ALERTS_CONSUMER, [event.event_id]):
        return False
    if not (isinstance(event, AlertChanged) and event.kind == MISSED_KIND
            and event.state == "firing" and event.job):
        return True
    tenant = event.tenant
    job_id = get_or_create_job(session, tenant.account, event.job).id
    cell = _Cell(tenant)
    cell.counts["missed"] = 1
    _save_cells(session, {(job_id, day_of(event.last_changed)): cell})
    return True


# --- reading what the batch needs --------------------------------------------------------------


def _find_jobs(batch: _Batch, events: list[RunReported | RunLogged]) -> None:
    wanted = {(e.tenant.account, e.job) for e in events}
    accounts = sorted({account for account, _ in wanted})
    jobs = core_table(Job)
    for start in range(0, len(accounts), _CHUNK):
        for row in batch.session.execute(
            sql_select(jobs.c.id, jobs.c.account_id, jobs.c.name).where(
                jobs.c.account_id.in_(accounts[start:start + _CHUNK]))
        ):
            if (row.account_id, row.name) in wanted:
                batch.job_ids[(row.account_id, row.name)] = row.id
    for account, name in sorted(wanted - batch.job_ids.keys()):
        # Ingest creates a job before publishing its first report; this covers older events.
        batch.job_ids[(account, name)] = get_or_create_job(batch.session, account, name).id


def _job_id(batch: _Batch, event: RunReported | RunLogged) -> str:
    return batch.job_ids[(event.tenant.account, event.job)]


def _load_runs(batch: _Batch, runs: list[RunReported]) -> None:
    """The rows the batch's reports with a run id belong to, in a few statements."""
    keys = sorted({(_job_id(batch, r), r.run_id) for r in runs if r.run_id is not None})
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        for row in batch.session.execute(sql_select(_RUNS).where(
                tuple_(_RUNS.c.job_id, _RUNS.c.run_key).in_(chunk))).mappings():
            batch.rows[(row["job_id"], row["run_key"])] = dict(row)


def _latest(batch: _Batch, job_id: str) -> tuple[str, str] | None:
    """The key of the job's latest run (by its time): the latest stored one (read once per
    batch) or one this batch wrote."""
    if job_id not in batch.stored_latest:
        row = batch.session.execute(
            sql_select(_RUNS).where(_RUNS.c.job_id == job_id)
            .order_by(_RUNS.c.at.desc(), _RUNS.c.id.desc()).limit(1)
        ).mappings().first()
        if row is None:
            batch.stored_latest[job_id] = None
        else:
            key = (job_id, row["run_key"])
            batch.rows.setdefault(key, dict(row))
            batch.stored_latest[job_id] = key
    candidates = [key for key in batch.dirty if key[0] == job_id]
    stored = batch.stored_latest[job_id]
    if stored is not None:
        candidates.insert(0, stored)
    if not candidates:
        return None
    # max keeps the first of equals: the stored row, then the batch's in no set order, so
    # the time decides and a tie goes to the stored run.
    return max(candidates, key=lambda key: batch.rows[key]["at"])


def _row(batch: _Batch, key: tuple[str, str]) -> Row | None:
    return batch.rows.get(key)


# --- applying ----------------------------------------------------------------------------------


def _on_run(batch: _Batch, run: RunReported) -> None:
    job_id = _job_id(batch, run)
    key = (job_id, run_key(run.run_id, run.event_id))
    if run.run_id is None and run.status in FINAL:
        key = _open_start(batch, job_id, run) or key
    before = _row(batch, key)
    after = absorb(before, run, batch.excerpt_limit)
    _count(batch, job_id, run.tenant, before, after)
    if before is None:
        after.update(reseller_id=run.tenant.reseller, customer_id=run.tenant.customer,
                     account_id=run.tenant.account, job_id=job_id)
    batch.rows[key] = after
    batch.dirty.add(key)


def _open_start(batch: _Batch, job_id: str, run: RunReported) -> tuple[str, str] | None:
    latest = _latest(batch, job_id)
    row = _row(batch, latest) if latest is not None else None
    if (row is not None and row["status"] == "started" and row["run_id"] is None
            and row["at"] <= run.occurred_at <= row["at"] + OPEN_START_WINDOW):
        return latest
    return None


def _on_log(batch: _Batch, log: RunLogged) -> None:
    job_id = _job_id(batch, log)
    key: tuple[str, str] | None = (job_id, log.run_id) if log.run_id is not None else None
    if key is not None and key not in batch.rows:
        row = batch.session.execute(sql_select(_RUNS).where(
            _RUNS.c.job_id == job_id, _RUNS.c.run_key == log.run_id)).mappings().first()
        if row is not None:
            batch.rows[key] = dict(row)
    if key is None or key not in batch.rows:
        key = _latest(batch, job_id)
    if key is None:
        return  # a log line for a job that never ran: no run to attach it to
    batch.rows[key] = append_log(batch.rows[key], log.log_excerpt, batch.excerpt_limit)
    batch.dirty.add(key)


def _count(batch: _Batch, job_id: str, tenant: Tenant, before: Row | None, after: Row) -> None:
    for share, sign in ((tally(before), -1), (tally(after), 1)):
        if share is None:
            continue
        counts = batch.cell(job_id, share.day, tenant).counts
        counts["successes"] += sign * share.successes
        counts["failures"] += sign * share.failures
        counts["warnings"] += sign * share.warnings
        counts["bytes_transferred"] += sign * share.bytes_transferred
        counts["duration_seconds"] += sign * share.duration_seconds


def _on_usage(batch: _Batch, usage: UsageReported) -> None:
    key = (usage.tenant.account, day_of(usage.occurred_at))
    known = batch.usage.get(key)
    if known is not None and known["reported_at"] > usage.occurred_at:
        return
    batch.usage[key] = {
        "account_id": usage.tenant.account, "day": key[1],
        "reseller_id": usage.tenant.reseller, "customer_id": usage.tenant.customer,
        "bytes_used": usage.bytes_used, "quota_bytes": usage.quota_bytes,
        "reported_at": usage.occurred_at}


# --- writing -----------------------------------------------------------------------------------


def _save_runs(batch: _Batch) -> None:
    rows = [batch.rows[key] for key in sorted(batch.dirty)]
    new = [{name: row.get(name) for name in _RUN_COLUMNS} for row in rows if "id" not in row]
    known = [row for row in rows if "id" in row]
    if new:
        batch.session.execute(_RUNS.insert(), new)
    if known:
        batch.session.execute(
            _RUNS.update().where(_RUNS.c.id == bindparam("_id")).values(
                {name: bindparam(name, type_=_RUNS.c[name].type) for name in _RUN_COLUMNS}),
            [{"_id": row["id"], **{name: row[name] for name in _RUN_COLUMNS}} for row in known])


def _save_cells(session: Session, cells: dict[tuple[str, date], _Cell]) -> None:
    changed = {key: cell for key, cell in cells.items() if any(cell.counts.values())}
    if not changed:
        return
    keys = sorted(changed)
    existing: set[tuple[str, date]] = set()
    for start in range(0, len(keys), _CHUNK):
        existing.update(
            (row.job_id, row.day) for row in session.execute(
                sql_select(_CELLS.c.job_id, _CELLS.c.day).where(
                    tuple_(_CELLS.c.job_id, _CELLS.c.day).in_(keys[start:start + _CHUNK]))))
    fresh = [{"job_id": job_id, "day": day, "reseller_id": cell.tenant.reseller,
              "customer_id": cell.tenant.customer, "account_id": cell.tenant.account,
              **{name: max(0, value) for name, value in cell.counts.items()}}
             for (job_id, day), cell in changed.items() if (job_id, day) not in existing]
    if fresh:
        session.execute(_CELLS.insert(), fresh)
    moved = [{"_job": job_id, "_day": day, **{f"d_{n}": v for n, v in cell.counts.items()}}
             for (job_id, day), cell in changed.items() if (job_id, day) in existing]
    if moved:
        session.execute(
            _CELLS.update().where(and_(_CELLS.c.job_id == bindparam("_job"),
                                       _CELLS.c.day == bindparam("_day")))
            .values({name: _CELLS.c[name] + bindparam(f"d_{name}") for name in _COUNTS}),
            moved)


def _save_usage(session: Session, usage: dict[tuple[str, date], Row]) -> None:
    if not usage:
        return
    keys = sorted(usage)
    stored: dict[tuple[str, date], datetime] = {}
    for start in range(0, len(keys), _CHUNK):
        for row in session.execute(
            sql_select(_USAGE.c.account_id, _USAGE.c.day, _USAGE.c.reported_at).where(
                tuple_(_USAGE.c.account_id, _USAGE.c.day).in_(keys[start:start + _CHUNK]))
        ):
            stored[(row.account_id, row.day)] = row.reported_at
    fresh = [row for key, row in usage.items() if key not in stored]
    later = [{"_account": key[0], "_day": key[1], **row} for key, row in usage.items()
             if key in stored and stored[key] <= row["reported_at"]]
    if fresh:
        session.execute(_USAGE.insert(), fresh)
    if later:
        session.execute(
            _USAGE.update().where(and_(_USAGE.c.account_id == bindparam("_account"),
                                       _USAGE.c.day == bindparam("_day")))
            .values({name: bindparam(name, type_=_USAGE.c[name].type)
                     for name in ("bytes_used", "quota_bytes", "reported_at")}),
            [{k: v for k, v in row.items()
              if k in ("_account", "_day", "bytes_used", "quota_bytes", "reported_at")}
             for row in later])


__all__ = ["ALERTS_CONSUMER", "INGEST_CONSUMER", "apply_alert", "apply_ingest"]

