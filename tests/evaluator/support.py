"""Helpers the evaluator tests share (fixtures live in conftest.py): a start time, a tenant,
and builders of the events the evaluator consumes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from services.evaluator.service import Evaluator
from shared.events import (
    HeartbeatReported,
    RunReported,
    ScheduleSet,
    Tenant,
    UsageReported,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
TENANT = Tenant(reseller="r1", customer="c1", account="a1")


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
