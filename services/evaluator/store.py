"""The engine's I/O: load a partition's facts, write back what changed, and turn transitions
into alert rows and outbox events. Everything here runs inside one transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, true, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from services.evaluator import alerts
from services.evaluator.facts import AccountFacts, JobFacts, JobKey, Transition, label
from services.evaluator.policies import Override, PolicyBook, Scope
from services.evaluator.tables import (
    AccountState,
    Alert,
    ClientMinVersion,
    JobState,
    ThresholdOverride,
)
from shared.db import core_table
from shared.events import AlertChanged, Tenant
from shared.schedules import InvalidSchedule, Schedule
from shared.streams import partition_of
from shared.tenancy import Account, get_or_create_job

_CHUNK = 500  # keeps IN lists well below every backend's parameter limit


def load_policies(session: Session) -> PolicyBook:
    overrides = [
        Override(scope=row.scope, scope_id=row.scope_id, name=row.name, value=row.value)  # type: ignore[arg-type]
        for row in session.exec(select(ThresholdOverride))
    ]
    versions = {row.client_name: row.min_version for row in session.exec(select(ClientMinVersion))}
    return PolicyBook.build(overrides, versions)


# --- loading ---------------------------------------------------------------------------------


Firing = dict[tuple[str, str | None], set[str]]


def _firing(
    session: Session, partitions: Collection[int], accounts: Collection[str] | None = None
) -> Firing:
    out: Firing = {}
    query = sql_select(col(Alert.account_id), col(Alert.job), col(Alert.kind),
                       col(Alert.key)).where(col(Alert.state) == "firing")
    for where in _chunks_of(col(Alert.account_id), accounts):
        for account_id, job, kind, key in session.execute(query.where(where)):
            if partition_of(account_id) in partitions:
                out.setdefault((account_id, job), set()).add(label(kind, key))
    return out


def _chunks_of(column: Any, values: Collection[str] | None) -> list[Any]:
    """``column IN values`` in chunks, or one condition that is always true without values."""
    if values is None:
        return [true()]
    wanted = list(values)
    return [column.in_(wanted[start:start + _CHUNK]) for start in range(0, len(wanted), _CHUNK)]


def load_jobs(
    session: Session, partitions: Collection[int], accounts: Collection[str] | None = None
) -> list[JobFacts]:
    """Every job of ``partitions`` (or of those ``accounts`` in them): plain rows, not ORM
    objects, as start-up time matters."""
    firing = _firing(session, partitions, accounts)
    table = core_table(JobState)
    in_partitions = table.c.partition.in_(list(partitions))
    # Streamed, not listed: 100,000 rows held at once cost a third more time (the collector).
    rows = (row for where in _chunks_of(table.c.account_id, accounts)
            for row in session.execute(sql_select(table).where(in_partitions, where)).mappings())
    tenants: dict[str, Tenant] = {}
    schedules: dict[tuple[str | None, str | None, int | None], Schedule | None] = {}
    jobs: list[JobFacts] = []
    for row in rows:
        account_id = row["account_id"]
        tenant = tenants.get(account_id)
        if tenant is None:
            tenant = tenants[account_id] = Tenant(
                reseller=row["reseller_id"], customer=row["customer_id"], account=account_id)
        spec = (row["cron"], row["timezone"], row["interval_seconds"])
        if spec not in schedules:
            schedules[spec] = _schedule(*spec)
        jobs.append(JobFacts(
            tenant=tenant, name=row["job_name"], job_id=row["job_id"], schedule=schedules[spec],
            from_schedule=dict(row["schedule_settings"] or {}), last_status=row["last_status"],
            last_run_at=row["last_run_at"], last_success_at=row["last_success_at"],
            last_activity_at=row["last_activity_at"],
            consecutive_failures=row["consecutive_failures"],
            consecutive_misses=row["consecutive_misses"], next_due_at=row["next_due_at"],
            running_run_id=row["running_run_id"], running_since=row["running_since"],
            firing=set(firing.get((account_id, row["job_name"]), ())),
        ))
    return jobs


def _schedule(cron: str | None, timezone: str | None, interval: int | None) -> Schedule | None:
    try:
        if cron:
            return Schedule(cron=cron, timezone=timezone or "UTC")
        if interval:
            return Schedule(interval_seconds=interval)
    except InvalidSchedule:
        pass  # stored by an older release with other rules: evaluate the job without it
    return None


def load_accounts(
    session: Session, partitions: Collection[int], *, known: Collection[str] = (),
    only: Collection[str] | None = None, created_after: datetime | None = None,
) -> list[AccountFacts]:
    """Accounts of ``partitions`` (all, ``only`` those ids, or those created after a time)
    not already ``known``."""
    query = sql_select(col(Account.id), col(Account.reseller_id), col(Account.customer_id),
                       col(Account.created_at), col(Account.quota_bytes))
    if only is not None:
        query = query.where(col(Account.id).in_(list(only)))
    if created_after is not None:
        query = query.where(col(Account.created_at) > created_after)
    wanted = [tuple(row) for row in session.execute(query)
              if row[0] not in known and partition_of(row[0]) in partitions]
    if not wanted:
        return []
    ids = [row[0] for row in wanted]
    states: dict[str, AccountState] = {}
    for start in range(0, len(ids), _CHUNK):
        for found in session.exec(select(AccountState).where(
                col(AccountState.account_id).in_(ids[start:start + _CHUNK]))):
            states[found.account_id] = found
    firing = _firing(session, partitions, ids if only is not None else None)
    out = []
    for account_id, reseller_id, customer_id, created_at, quota_bytes in wanted:
        state = states.get(account_id)
        out.append(AccountFacts(
            tenant=Tenant(reseller=reseller_id, customer=customer_id, account=account_id),
            created_at=created_at, quota_bytes=state.quota_bytes
            if state and state.quota_bytes is not None else quota_bytes,
            first_run_at=state.first_run_at if state else None,
            zero_bytes_since=state.zero_bytes_since if state else None,
            firing=set(firing.get((account_id, None), set())),
        ))
    return out


# --- saving ----------------------------------------------------------------------------------


def _job_row(job: JobFacts) -> dict[str, Any]:
    schedule = job.schedule
    return {
        "job_id": job.job_id, "account_id": job.tenant.account,
        "partition": partition_of(job.tenant.account), "reseller_id": job.tenant.reseller,
        "customer_id": job.tenant.customer, "job_name": job.name,
        "cron": schedule.cron if schedule else None,
        "timezone": schedule.timezone if schedule and schedule.cron else None,
        "interval_seconds": schedule.interval_seconds if schedule else None,
        "schedule_settings": job.from_schedule, "last_status": job.last_status,
        "last_run_at": job.last_run_at, "last_success_at": job.last_success_at,
        "last_activity_at": job.last_activity_at,
        "consecutive_failures": job.consecutive_failures,
        "consecutive_misses": job.consecutive_misses, "next_due_at": job.next_due_at,
        "running_run_id": job.running_run_id, "running_since": job.running_since,
    }


def _progress_row(job: JobFacts) -> dict[str, Any]:
    return {
        "job_id": job.job_id, "last_status": job.last_status, "last_run_at": job.last_run_at,
        "last_success_at": job.last_success_at, "last_activity_at": job.last_activity_at,
        "consecutive_failures": job.consecutive_failures,
        "consecutive_misses": job.consecutive_misses, "next_due_at": job.next_due_at,
        "running_run_id": job.running_run_id, "running_since": job.running_since,
    }


def save_jobs(
    session: Session, jobs: Iterable[JobFacts], schedule_changed: Collection[JobKey] = ()
) -> None:
    known = [job for job in jobs if job.job_id is not None]
    new = [job for job in jobs if job.job_id is None]
    if new:
        _insert_new_jobs(session, new)
    table = core_table(JobState)
    # Most changes are run progress; the schedule columns (and their JSON) are written only
    # for jobs whose schedule changed in this batch.
    rescheduled = [job for job in known if job.key in schedule_changed]
    progressed = [job for job in known if job.key not in schedule_changed]
    if rescheduled:
        _update_by_key(session, table, "job_id", [_mutable(_job_row(job)) for job in rescheduled])
    if progressed:
        _update_by_key(session, table, "job_id", [_progress_row(job) for job in progressed])


def _insert_new_jobs(session: Session, jobs: list[JobFacts]) -> None:
    # Job rows may exist already (the API, or a job seen before this evaluator kept state).
    for job in jobs:
        job.job_id = get_or_create_job(session, job.tenant.account, job.name).id
    ids = [job.job_id for job in jobs]
    existing = set(session.exec(select(JobState.job_id).where(col(JobState.job_id).in_(ids))))
    fresh = [_job_row(job) for job in jobs if job.job_id not in existing]
    stale = [_job_row(job) for job in jobs if job.job_id in existing]
    if fresh:
        session.execute(core_table(JobState).insert(), fresh)
    if stale:
        _update_by_key(session, core_table(JobState), "job_id", stale)


_FIXED = ("account_id", "partition", "reseller_id", "customer_id", "job_name")


def _mutable(row: dict[str, Any]) -> dict[str, Any]:
    # Columns that never change for a job stay out of UPDATEs: no index maintenance for them.
    return {k: v for k, v in row.items() if k not in _FIXED}


def _update_by_key(session: Session, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE … WHERE key = ?: much cheaper than the ORM's bulk update."""
    columns = [name for name in rows[0] if name != key]
    # Typed bind parameters: the columns' own conversions (UTC datetimes, JSON) must apply.
    statement = (update(table).where(table.c[key] == bindparam(f"_{key}", type_=table.c[key].type))
                 .values({name: bindparam(f"_{name}", type_=table.c[name].type)
                          for name in columns}))
    session.execute(statement, [{f"_{k}": v for k, v in row.items()} for row in rows])


def save_accounts(session: Session, accounts: Iterable[AccountFacts]) -> None:
    rows = [{"account_id": a.tenant.account, "partition": partition_of(a.tenant.account),
             "first_run_at": a.first_run_at, "zero_bytes_since": a.zero_bytes_since,
             "quota_bytes": a.quota_bytes} for a in accounts]
    if not rows:
        return
    ids = [row["account_id"] for row in rows]
    existing = set(session.exec(
        select(AccountState.account_id).where(col(AccountState.account_id).in_(ids))))
    fresh = [row for row in rows if row["account_id"] not in existing]
    known = [row for row in rows if row["account_id"] in existing]
    if fresh:
        session.execute(core_table(AccountState).insert(), fresh)
    if known:
        _update_by_key(session, core_table(AccountState), "account_id", known)


def record(session: Session, transitions: list[Transition]) -> list[AlertChanged]:
    """Write the transitions as alert rows, history and outbox events."""
    return alerts.apply(session, transitions)


def set_override(session: Session, scope: Scope, scope_id: str, name: str, value: str) -> None:
    row = session.exec(select(ThresholdOverride).where(
        ThresholdOverride.scope == scope, ThresholdOverride.scope_id == scope_id,
        ThresholdOverride.name == name)).first()
    if row is None:
        row = ThresholdOverride(scope=scope, scope_id=scope_id, name=name, value=value)
    row.value, row.updated_at = value, datetime.now(UTC)
    session.add(row)


