"""Backup state on /metrics, scraped from a real ops server: firing alerts per kind and
reseller, jobs per state and reseller, and the opt-in per-job last success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.evaluator.tables import Alert
from services.portal.backup_state import register_backup_state
from shared.bus import Bus
from shared.config import PortalSettings
from shared.db import Database
from shared.natsd import free_port
from shared.ops import ops_app
from shared.runtime import Runtime
from shared.webserver import serve_until
from tests.portal.support import T0, job_state, seed_tenants

Samples = dict[tuple[Any, ...], float]
Scrape = Callable[[PortalSettings], AbstractAsyncContextManager[Samples]]


@pytest.fixture
def scrape(db: Database) -> Scrape:
    @asynccontextmanager
    async def scraped(settings: PortalSettings) -> AsyncIterator[Samples]:
        collector = register_backup_state(db, settings)
        stop, port = asyncio.Event(), free_port()
        server = asyncio.create_task(serve_until(
            ops_app(Runtime(bus=Bus("nats://127.0.0.1:1"), db=db)), "127.0.0.1", port, stop))
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(100):
                    try:
                        response = await client.get(f"http://127.0.0.1:{port}/metrics")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            samples: Samples = {}
            for family in text_string_to_metric_families(response.text):
                if family.name.startswith(("backstop_alerts_firing", "backstop_jobs",
                                           "backstop_job_last_success")):
                    for s in family.samples:
                        samples[(s.name, *sorted(s.labels.items()))] = s.value
            yield samples  # type: ignore[misc]
        finally:
            REGISTRY.unregister(collector)
            stop.set()
            await server

    return scraped  # type: ignore[return-value]


def _seed(db: Database) -> None:
    t = seed_tenants(db)
    job_state(db, t.a1, "fails", last_status="failure", last_run_at=T0, consecutive_failures=1)
    job_state(db, t.a1, "fine", last_status="success", last_run_at=T0, last_success_at=T0)
    job_state(db, t.z1, "late", last_status="success", last_run_at=T0, consecutive_misses=2,
              last_success_at=T0 - timedelta(days=1))
    with db.session() as s:
        for n, (issued, kind, state) in enumerate([(t.a1, "failed_run", "firing"),
                                                   (t.b1, "failed_run", "firing"),
                                                   (t.z1, "quota", "resolved")]):
            s.add(Alert(fingerprint=f"f{n}", kind=kind, reseller_id=issued.reseller.id,
                        customer_id=issued.customer.id, account_id=issued.account.id,
                        severity="error", state=state, summary="x"))


async def test_alerts_and_jobs_per_reseller(db: Database, scrape: Scrape) -> None:
    _seed(db)
    async with scrape(PortalSettings()) as samples:
        pass
    assert samples[("backstop_alerts_firing", ("kind", "failed_run"), ("reseller", "R1"))] == 2
    assert samples[("backstop_alerts_firing", ("kind", "quota"), ("reseller", "R2"))] == 0
    jobs = {key: value for key, value in samples.items() if key[0] == "backstop_jobs"}
    assert jobs[("backstop_jobs", ("reseller", "R1"), ("state", "failing"))] == 1
    assert jobs[("backstop_jobs", ("reseller", "R1"), ("state", "ok"))] == 1
    assert jobs[("backstop_jobs", ("reseller", "R2"), ("state", "late"))] == 1
    assert jobs[("backstop_jobs", ("reseller", "R2"), ("state", "paused"))] == 0
    assert len(jobs) == 2 * 6  # every state of every reseller, whatever the jobs
    assert not any(key[0].startswith("backstop_job_last_success") for key in samples)


async def test_per_job_last_success_is_opt_in(db: Database, scrape: Scrape) -> None:
    _seed(db)
    async with scrape(PortalSettings(metrics_job_last_success=True)) as samples:
        pass
    last = {key: value for key, value in samples.items()
            if key[0] == "backstop_job_last_success_timestamp_seconds"}
    assert last == {
        ("backstop_job_last_success_timestamp_seconds", ("account", "a1"), ("customer", "C1"),
         ("job", "fine"), ("reseller", "R1")): T0.timestamp(),
        ("backstop_job_last_success_timestamp_seconds", ("account", "z1"), ("customer", "Z"),
         ("job", "late"), ("reseller", "R2")): (T0 - timedelta(days=1)).timestamp(),
    }
