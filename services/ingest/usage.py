"""Usage reports and client heartbeats: each upload becomes one event, tenant from the token."""

from __future__ import annotations

from services.ingest.auth import Caller
from services.ingest.schemas import HeartbeatReport, UsageReport
from shared.events import HeartbeatReported, UsageReported


def usage_event(caller: Caller, report: UsageReport) -> UsageReported:
    quota = report.quota_bytes if report.quota_bytes is not None else caller.quota_bytes
    return UsageReported(
        tenant=caller.tenant, bytes_used=report.bytes_used, quota_bytes=quota, jobs=report.jobs
    )


def heartbeat_event(caller: Caller, report: HeartbeatReport) -> HeartbeatReported:
    return HeartbeatReported(tenant=caller.tenant, **report.model_dump())
