"""Job schedules: an upload becomes a ``ScheduleSet`` event unless it repeats the current one.

The event id is derived from (account, job, version, content): a retried upload after a lost
answer gets the same id and JetStream stores it once. Ingest remembers the last schedule per job,
so re-sending an unchanged schedule publishes nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.ingest.jobs import Jobs
from services.ingest.publish import Publisher
from services.ingest.schemas import Accepted, ScheduleRequest
from services.ingest.tables import StoredSchedule
from shared.db import Database
from shared.events import ScheduleSet, Tenant, utcnow

_SCHEDULE_NAMESPACE = uuid.UUID("0b8f6a52-3f43-4e0e-9f0f-5c0d7f0e4c21")


def schedule_digest(request: ScheduleRequest) -> str:
    canonical = json.dumps(request.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def schedule_event(tenant: Tenant, job: str, request: ScheduleRequest, version: int) -> ScheduleSet:
    content = schedule_digest(request)
    event_id = uuid.uuid5(_SCHEDULE_NAMESPACE, f"{tenant.account}/{job}/{version}/{content}").hex
    return ScheduleSet(event_id=event_id, tenant=tenant, job=job, **request.model_dump())


class Schedules:
    def __init__(self, db: Database, jobs: Jobs, publisher: Publisher) -> None:
        self._db = db
        self._jobs = jobs
        self._publisher = publisher

    async def upload(self, tenant: Tenant, job: str, request: ScheduleRequest) -> Accepted:
        await self._jobs.ensure(tenant, job)
        content = schedule_digest(request)
        current = await self._db.run(lambda s: s.get(StoredSchedule, (tenant.account, job)))
        if current is not None and current.digest == content:
            return Accepted(event_id=current.event_id, duplicate=True)
        version = current.version + 1 if current else 1
        event = schedule_event(tenant, job, request, version)
        accepted = await self._publisher.accept(event)
        try:
            await self._db.run(lambda s: _remember(s, event, content, version))
        except IntegrityError:
            pass  # a concurrent upload recorded its schedule first; both events are stored
        return accepted


def _remember(session: Session, event: ScheduleSet, content: str, version: int) -> None:
    row = session.get(StoredSchedule, (event.tenant.account, event.job))
    if row is None:
        row = StoredSchedule(account_id=event.tenant.account, job=event.job, digest=content,
                             version=version, event_id=event.event_id)
    elif row.version >= version:
        return  # a newer upload got there first
    else:
        row.digest, row.version, row.event_id = content, version, event.event_id
        row.updated_at = utcnow()
    session.add(row)
