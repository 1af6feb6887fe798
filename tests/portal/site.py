"""A portal for tests: its app on a migrated database, users of each role, and logging in."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.evaluator.tables import Alert, AlertTransition, JobState
from services.portal import users
from services.portal.app import create_app
from services.portal.history.projection import apply_ingest
from services.portal.state import PortalState
from services.portal.users import Role
from shared.bus import Bus
from shared.config import PortalSettings
from shared.db import Database
from shared.events import Event, RunReported, utcnow
from shared.natsd import free_port
from shared.tenancy import IssuedAccount, Job, get_or_create_job
from shared.webserver import serve_until
from tests.support import eventually, make_account

PASSWORD = "correct horse battery"
SECRET = "test-session-secret-" + "x" * 20


def settings(data_dir: Path, **overrides: object) -> PortalSettings:
    return PortalSettings(data_dir=data_dir, portal_session_secret=SECRET,
                          **overrides)  # type: ignore[arg-type]


def portal_app(db: Database, data_dir: Path, bus: Bus | None = None,
               **overrides: object) -> FastAPI:
    return create_app(settings(data_dir, **overrides), db, bus)


@dataclass
class Tenants:
    """Two resellers; the first with two customers: the scopes the security tests cross."""

    acme: IssuedAccount  # Reseller One / Acme
    globex: IssuedAccount  # Reseller One / Globex
    other: IssuedAccount  # Reseller Two / Initech


def tenants(db: Database) -> Tenants:
    return Tenants(
        make_account(db, reseller="Reseller One", customer="Acme", name="fileserver"),
        make_account(db, reseller="Reseller One", customer="Globex", name="mailserver"),
        make_account(db, reseller="Reseller Two", customer="Initech", name="erp"),
    )


def add_user(db: Database, email: str, role: Role, *, reseller: str | None = None,
             customer: str | None = None, read_only: bool = False,
             password: str = PASSWORD) -> None:
    with db.session() as session:
        users.add(session, email, role, password, reseller=reseller, customer=customer,
                  read_only=read_only)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    form = client.get("/login")
    answer = client.post("/login", data={"email": email, "password": password, "next": "/",
                                          "csrf_token": csrf_token(form.text)},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def seed_job(db: Database, issued: IssuedAccount, name: str, *, failures: int = 0,
             runs: int = 0, start: datetime | None = None, every: timedelta = timedelta(hours=24),
             message: str = "disk full", name_unchecked: bool = False) -> str:
    """A job with its evaluator state and ``runs`` runs in the history (the last ``failures``
    of them failed); returns the job id. ``name_unchecked``: store a name the ingest check would
    refuse (rows written by other tools may hold anything)."""
    now = utcnow()
    start = start or now - every * max(runs, 1)
    tenant = issued.account.tenant()
    with db.session() as session:
        if name_unchecked:
            job = Job(account_id=issued.account.id, name=name)
            session.add(job)
            session.flush()
        else:
            job = get_or_create_job(session, issued.account.id, name)
        events: list[Event] = []
        for i in range(runs):
            at = start + every * i
            failed = i >= runs - failures
            events.append(RunReported(
                tenant=tenant, job=name if not name_unchecked else "unchecked",
                status="failure" if failed else "success", run_id=f"{name}-{i}",
                started_at=at - timedelta(minutes=20 + i % 7), finished_at=at, occurred_at=at,
                duration_seconds=1200 + (i % 7) * 60, bytes_transferred=10**9 + i * 10**6,
                files_transferred=1000 + i, exit_code=2 if failed else 0,
                message=message if failed else None,
                log_excerpt=f"borg: {message}\nterminating with error status" if failed else None))
        if events and not name_unchecked:
            apply_ingest(session, events, 16 * 1024)
        last = start + every * (runs - 1) if runs else None
        session.add(JobState(
            job_id=job.id, account_id=issued.account.id, reseller_id=issued.reseller.id,
            customer_id=issued.customer.id, job_name=name, consecutive_failures=failures,
            last_status=("failure" if failures else "success") if runs else None,
            last_run_at=last, last_success_at=last if runs and not failures else None,
            interval_seconds=int(every.total_seconds()),
            next_due_at=(last + every) if last else None))
        return job.id


def seed_alert(db: Database, issued: IssuedAccount, job: str | None, *,
               summary: str = "Backup job nightly failed: disk full",
               kind: str = "failed_run", details: dict[str, object] | None = None) -> Alert:
    with db.session() as session:
        alert = Alert(fingerprint=uuid.uuid4().hex, kind=kind, reseller_id=issued.reseller.id,
                      customer_id=issued.customer.id, account_id=issued.account.id, job=job,
                      severity="error", state="firing", sequence=1, summary=summary,
                      details=details if details is not None else {"message": "disk full"})
        session.add(alert)
        session.flush()
        session.add(AlertTransition(alert_id=alert.id, sequence=1, state="firing",
                                    summary=summary))
        return alert


class RunningPortal:
    """The portal app under uvicorn on a free port, with its live alert feed, in this loop."""

    def __init__(self, db: Database, data_dir: Path, bus: Bus | None, **overrides: object
                 ) -> None:
        self.app = portal_app(db, data_dir, bus, **overrides)
        self.bus = bus
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def state(self) -> PortalState:
        state: PortalState = self.app.state.portal
        return state

    async def start(self) -> None:
        self.state.stop = self._stop
        self._tasks = [
            asyncio.create_task(serve_until(self.app, "127.0.0.1", self.port, self._stop)),
            asyncio.create_task(self.state.feed.run(self._stop)),
        ]
        async with httpx.AsyncClient() as client:
            async def answers() -> bool:
                try:
                    return (await client.get(f"{self.url}/login")).status_code == 200
                except httpx.TransportError:
                    return False
            await eventually(answers)
        if self.bus is not None:
            await eventually(self.state.feed.following.is_set)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
