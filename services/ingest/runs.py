"""Run reports: from the client's body to a stored ``RunReported`` event, one or a batch."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pydantic import ValidationError

from services.ingest.excerpts import cap_excerpt
from services.ingest.jobs import Jobs
from services.ingest.publish import Publisher
from services.ingest.schemas import (
    BatchItemResult,
    BatchResult,
    FieldProblem,
    RunBatch,
    RunReport,
)
from shared.bus import BusUnavailable
from shared.events import RunReported, Tenant, new_event_id

_RUN_NAMESPACE = uuid.UUID("6f1d3c1e-6a53-4a53-9f55-0b2f2f8f5a10")


def run_event_id(tenant: Tenant, job: str, run_id: str | None, status: str) -> str:
    """With a run id the event id is derived from it, so a retried upload is stored once."""
    if run_id is None:
        return new_event_id()
    return uuid.uuid5(_RUN_NAMESPACE, f"{tenant.account}/{job}/{run_id}/{status}").hex


def run_event(tenant: Tenant, report: RunReport, excerpt_limit: int) -> RunReported:
    duration = report.duration_seconds
    if duration is None and report.started_at and report.finished_at:
        duration = (report.finished_at - report.started_at).total_seconds()
    fields = report.model_dump(exclude={"duration_seconds", "log_excerpt"})
    return RunReported(
        event_id=run_event_id(tenant, report.job, report.run_id, report.status),
        tenant=tenant,
        duration_seconds=duration,
        log_excerpt=cap_excerpt(report.log_excerpt, excerpt_limit),
        source="api",
        **fields,
    )


class RunIntake:
    """Stores run reports: the job is registered, then the event is stored on JetStream."""

    def __init__(self, jobs: Jobs, publisher: Publisher, excerpt_limit: int) -> None:
        self._jobs = jobs
        self._publisher = publisher
        self._excerpt_limit = excerpt_limit

    async def store(self, tenant: Tenant, report: RunReport) -> tuple[str, bool]:
        """Returns (event id, duplicate); raises BusUnavailable when it was not stored."""
        await self._jobs.ensure(tenant, report.job)
        event = run_event(tenant, report, self._excerpt_limit)
        return event.event_id, await self._publisher.store(event)

    async def store_batch(self, tenant: Tenant, batch: RunBatch) -> BatchResult:
        """Each item is validated and stored on its own; one bad item spoils nothing else."""
        checked = [_validate(index, raw) for index, raw in enumerate(batch.runs)]
        valid = [(i, item) for i, item in enumerate(checked) if isinstance(item, RunReport)]
        # Register each job once, before the concurrent publishes.
        for job in dict.fromkeys(report.job for _, report in valid):
            await self._jobs.ensure(tenant, job)
        stored = await asyncio.gather(*(self._publish_item(tenant, i, r) for i, r in valid))
        results = [item for item in checked if isinstance(item, BatchItemResult)]
        results = sorted([*results, *stored], key=lambda r: r.index)
        return BatchResult(
            stored=sum(r.status == "stored" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status in ("invalid", "unavailable") for r in results),
            results=results,
        )

    async def _publish_item(self, tenant: Tenant, index: int, report: RunReport) -> BatchItemResult:
        event = run_event(tenant, report, self._excerpt_limit)
        try:
            duplicate = await self._publisher.store(event)
        except BusUnavailable:
            return BatchItemResult(index=index, status="unavailable")
        return BatchItemResult(
            index=index, status="duplicate" if duplicate else "stored", event_id=event.event_id
        )


def _validate(index: int, raw: Any) -> RunReport | BatchItemResult:
    try:
        return RunReport.model_validate(raw)
    except ValidationError as exc:
        return BatchItemResult(index=index, status="invalid", errors=_problems(exc))


def _problems(exc: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(field=".".join(str(p) for p in err["loc"]), message=err["msg"])
        for err in exc.errors()
    ]
