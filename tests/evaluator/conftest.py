"""Evaluator fixtures: a movable clock, event builders, and evaluators running on the real bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.evaluator.service import Evaluator
from shared.bus import Bus
from shared.clock import FakeClock
from shared.config import EvaluatorSettings
from shared.db import Database
from shared.events import (
    HeartbeatReported,
    RunReported,
    ScheduleSet,
    Tenant,
    UsageReported,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
TENANT = Tenant(reseller="r1", customer="c1", account="a1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def run(status: str, at: datetime, *, job: str = "nightly", tenant: Tenant = TENANT,
        **fields: Any) -> RunReported:
    times = {"started_at": at} if status == "started" else {"finished_at": at}
    return RunReported(tenant=tenant, job=job, status=status, occurred_at=at,  # type: ignore[arg-type]
                       **{**times, **fields})


def schedule(at: datetime, *, job: str = "nightly", tenant: Tenant = TENANT,
             **fields: Any) -> ScheduleSet:
    return ScheduleSet(tenant=tenant, job=job, occurred_at=at, **fields)


def usage(at: datetime, used: int, quota: int | None = 1000, tenant: Tenant = TENANT
          ) -> UsageReported:
    return UsageReported(tenant=tenant, occurred_at=at, bytes_used=used, quota_bytes=quota)


def heartbeat(at: datetime, version: str, name: str = "restic", tenant: Tenant = TENANT
              ) -> HeartbeatReported:
    return HeartbeatReported(tenant=tenant, occurred_at=at, client_name=name,
                             client_version=version)


StartEvaluator = Callable[..., Awaitable[Evaluator]]


@pytest.fixture
async def start_evaluator(bus: Bus) -> AsyncIterator[StartEvaluator]:
    """Start evaluator replicas in the background; all are stopped at the end of the test."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(db: Database, *, replica_id: str, **settings: Any) -> Evaluator:
        config = EvaluatorSettings(**{"evaluator_lease_seconds": 3.0,
                                      "evaluator_refresh_seconds": 0.5, **settings})
        evaluator = Evaluator(db, bus, config, replica_id=replica_id)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(evaluator.run(stop))))
        return evaluator

    yield start
    for stop, _ in running:
        stop.set()
    for _, task in running:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=15)
