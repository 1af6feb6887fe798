"""Storing an upload's event on JetStream, counted for ingest's metrics."""

from __future__ import annotations

from services.ingest.metrics import PUBLISH_FAILURES, PUBLISHED
from services.ingest.schemas import Accepted
from shared.bus import Bus, BusUnavailable
from shared.events import (
    Event,
    HeartbeatReported,
    RunLogged,
    RunReported,
    ScheduleSet,
    UsageReported,
)

INGEST_EVENT_TYPES = [
    cls.type for cls in (RunReported, RunLogged, ScheduleSet, UsageReported, HeartbeatReported)
]


class Publisher:
    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        # Labelled children looked up once per event type (``labels()`` locks on every call).
        self._published = {kind: PUBLISHED.labels(kind) for kind in INGEST_EVENT_TYPES}
        self._failed = {kind: PUBLISH_FAILURES.labels(kind) for kind in INGEST_EVENT_TYPES}

    async def store(self, event: Event) -> bool:
        """Returns once JetStream stored ``event``: True if it already had it (a retry)."""
        try:
            duplicate = await self._bus.publish(event, timeout=self._timeout)
        except BusUnavailable:
            self._failed[event.type].inc()
            raise
        self._published[event.type].inc()
        return duplicate

    async def accept(self, event: Event) -> Accepted:
        """Store ``event`` and make the client's receipt for it."""
        return Accepted(event_id=event.event_id, duplicate=await self.store(event))
