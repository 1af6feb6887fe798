"""Helpers the portal tests share: event builders and reads of the history tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from services.evaluator.tables import JobState
from services.portal.history.projection import apply_alert, apply_ingest
from services.portal.history.tables import HistoryDayCell, HistoryRun, HistoryUsageDay
from shared.db import Database
from shared.events import AlertChanged, Event, RunLogged, RunReported, Tenant, UsageReported
from shared.tenancy import IssuedAccount, get_or_create_job
from tests.support import make_account

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
LIMIT = 16 * 1024


def run(tenant: Tenant, status: str, at: datetime, *, job: str = "nightly",
        **fields: Any) -> RunReported:
    times = {"started_at": at} if status == "started" else {"finished_at": at}
    return RunReported(tenant=tenant, job=job, status=status, occurred_at=at,  # type: ignore[arg-type]
                       **{**times, **fields})


def logged(tenant: Tenant, text: str, at: datetime, *, job: str = "nightly",
           run_id: str | None = None) -> RunLogged:
    return RunLogged(tenant=tenant, job=job, occurred_at=at, log_excerpt=text, run_id=run_id)


def usage(tenant: Tenant, at: datetime, used: int, quota: int | None = None) -> UsageReported:
    return UsageReported(tenant=tenant, occurred_at=at, bytes_used=used, quota_bytes=quota)


def missed(tenant: Tenant, at: datetime, *, job: str = "nightly", state: str = "firing",
           sequence: int = 1) -> AlertChanged:
    return AlertChanged(
        event_id=f"missed-{tenant.account}-{job}-{sequence}", tenant=tenant, fingerprint="f" * 32,
        kind="missed_run", state=state, severity="error", sequence=sequence, job=job,  # type: ignore[arg-type]
        summary=f"Backup job {job} missed 1 scheduled run(s)", first_seen=at, last_changed=at)


def ingest(db: Database, *events: Event, limit: int = LIMIT) -> int:
    return _in(db, lambda s: apply_ingest(s, list(events), limit))


def alert(db: Database, event: Event) -> bool:
    return _in(db, lambda s: apply_alert(s, event))


def _in(db: Database, work: Any) -> Any:
    with db.session() as session:
        return work(session)


def runs(db: Database) -> list[HistoryRun]:
    with db.session() as session:
        return list(session.execute(
            select(HistoryRun).order_by(HistoryRun.at)).scalars())  # type: ignore[arg-type]


def cells(db: Database) -> list[HistoryDayCell]:
    with db.session() as session:
        return list(session.execute(
            select(HistoryDayCell).order_by(HistoryDayCell.day)).scalars())  # type: ignore[arg-type]


def usage_days(db: Database) -> list[HistoryUsageDay]:
    with db.session() as session:
        return list(session.execute(
            select(HistoryUsageDay).order_by(HistoryUsageDay.day)).scalars())  # type: ignore[arg-type]



@dataclass(frozen=True)
class Tenants:
    """Two resellers: R1 (customers C1 with account a1, C2 with b1) and R2 (account z1)."""

    a1: IssuedAccount
    b1: IssuedAccount
    z1: IssuedAccount


def seed_tenants(db: Database) -> Tenants:
    return Tenants(
        a1=make_account(db, reseller="R1", customer="C1", name="a1"),
        b1=make_account(db, reseller="R1", customer="C2", name="b1"),
        z1=make_account(db, reseller="R2", customer="Z", name="z1"),
    )


def job_state(db: Database, issued: IssuedAccount, name: str, **state: Any) -> str:
    """A job with the evaluator's state for it (as the evaluator stores it); returns its id."""
    with db.session() as session:
        job = get_or_create_job(session, issued.account.id, name)
        session.add(JobState(job_id=job.id, account_id=issued.account.id,
                             reseller_id=issued.reseller.id, customer_id=issued.customer.id,
                             job_name=name, **state))
        return job.id


def job_id(db: Database, issued: IssuedAccount, name: str) -> str:
    with db.session() as session:
        return get_or_create_job(session, issued.account.id, name).id
