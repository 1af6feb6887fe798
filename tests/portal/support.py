"""Helpers the portal tests share: event builders and reads of the history tables; alerts,
notifications and usage days written as the evaluator, the notifier and the run history write
them; editors of each scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.evaluator.alerts import fingerprint as alert_fingerprint
from services.evaluator.tables import Alert, AlertTransition, JobState
from services.notifier.tables import (
    AlertNotifyState,
    DeliveryAttempt,
    Notification,
    NotifyTransition,
)
from services.portal.history.projection import apply_alert, apply_ingest
from services.portal.history.tables import HistoryDayCell, HistoryRun, HistoryUsageDay
from services.portal.rights import Editor
from shared.db import Database
from shared.events import AlertChanged, Event, RunLogged, RunReported, Tenant, UsageReported
from shared.scopes import Scope
from shared.tenancy import IssuedAccount, get_or_create_job
from tests.support import make_account

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
LIMIT = 16 * 1024
FIRED_AT = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


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


def scope_of(issued: IssuedAccount) -> Scope:
    """The scope of a customer user of the account's customer."""
    return Scope.of_customer(issued.reseller.id, issued.customer.id)


def editor(scope: Scope, *, read_only: bool = False) -> Editor:
    return Editor(scope, read_only, "tester@example.com")


def add_alert(db: Database, issued: IssuedAccount, *, kind: str = "failed_run",
              job: str | None = "nightly", state: str = "firing", at: datetime,
              summary: str = "Backup job nightly failed: disk full") -> str:
    """An alert with its transitions (fired at ``at``; resolved an hour later when ``state``
    is resolved); returns its fingerprint."""
    fp = alert_fingerprint(kind, issued.account.id, job)
    sequence = 1 if state == "firing" else 2
    with db.session() as session:
        alert = Alert(fingerprint=fp, kind=kind, reseller_id=issued.reseller.id,
                      customer_id=issued.customer.id, account_id=issued.account.id, job=job,
                      severity="error", state=state, sequence=sequence, summary=summary,
                      first_seen=at, last_changed=at + timedelta(hours=sequence - 1),
                      details={"exit_code": 2})
        session.add(alert)
        session.flush()
        session.add(AlertTransition(alert_id=alert.id, sequence=1, state="firing",
                                    summary=summary, at=at))
        if state == "resolved":
            session.add(AlertTransition(alert_id=alert.id, sequence=2, state="resolved",
                                        summary="resolved", at=at + timedelta(hours=1)))
        session.add(AlertNotifyState(
            fingerprint=fp, account_id=issued.account.id, customer_id=issued.customer.id,
            reseller_id=issued.reseller.id, kind=kind, job=job, state=state, sequence=sequence,
            alert={"kind": kind}, firing_notified=True, last_notified_at=at,
            notification_count=1))
    return fp


def add_notification(db: Database, issued: IssuedAccount, fp: str, *, to: str,
                     channel: str = "email", status: str = "sent", at: datetime,
                     failures: int = 0, sequence: int = 1, transition: str = "firing") -> int:
    """A notification with ``failures`` failed attempts before its last one (``status``)."""
    with db.session() as session:
        note = Notification(
            key=f"{fp}:{sequence}:{channel}:{to}", fingerprint=fp, sequence=sequence,
            account_id=issued.account.id, channel=channel, target=to, status=status,
            attempts=failures + (0 if status == "pending" else 1), next_attempt_at=at,
            last_error="451 try later" if failures else None, created_at=at,
            sent_at=at + timedelta(seconds=failures * 2 + 1) if status == "sent" else None,
            alert={"kind": "failed_run"}, transition=transition,
            reseller_id=issued.reseller.id, customer_id=issued.customer.id)
        session.add(note)
        session.flush()
        assert note.id is not None
        for n in range(failures):
            session.add(DeliveryAttempt(notification_id=note.id, at=at + timedelta(seconds=2 * n),
                                        status="retry", error="451 try later", channel=channel,
                                        target=to))
        if status != "pending":
            session.add(DeliveryAttempt(
                notification_id=note.id, at=at + timedelta(seconds=2 * failures + 1),
                status=status, channel=channel, target=to))
        return note.id


def add_suppressed(db: Database, issued: IssuedAccount, fp: str, *, reason: str,
                   at: datetime, sequence: int = 1) -> None:
    with db.session() as session:
        session.add(NotifyTransition(
            key=f"{fp}:{sequence}", fingerprint=fp, sequence=sequence, transition="firing",
            account_id=issued.account.id, customer_id=issued.customer.id,
            reseller_id=issued.reseller.id, alert={"kind": "failed_run"}, received_at=at,
            planned_at=at, plan_after=at, suppressed_reason=reason))


def add_usage(db: Database, issued: IssuedAccount, day: date, used: int,
              quota: int | None = None) -> None:
    with db.session() as session:
        session.add(HistoryUsageDay(
            account_id=issued.account.id, day=day, reseller_id=issued.reseller.id,
            customer_id=issued.customer.id, bytes_used=used, quota_bytes=quota,
            reported_at=datetime.combine(day, datetime.min.time(), UTC)))
