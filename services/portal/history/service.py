"""The run history as a running projection: a durable consumer of the ingest stream (runs, log
lines, usage), one of the alert stream (missed runs into the day cells) and the pruning timer.

The portal starts :func:`run_projection` beside its web server; it also runs on its own (tests,
a separate deployment), needing only a :class:`~shared.runtime.Runtime`.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from services.portal.history.projection import (
    ALERTS_CONSUMER,
    INGEST_CONSUMER,
    apply_alert,
    apply_ingest,
)
from services.portal.history.retention import prune
from shared.clock import Clock, SystemClock
from shared.config import PortalSettings
from shared.consumers import consume, consume_ordered
from shared.db import Lane
from shared.events import AlertChanged, Event, RunLogged, RunReported, UsageReported
from shared.runtime import Runtime
from shared.streams import ALERTS, INGEST, ConsumerSpec
from shared.wakeup import pause

log = logging.getLogger(__name__)

# Its own threads: the projection's writes neither wait behind page reads nor hold them up.
LANE = Lane("portal-history")

PRUNED = Counter("backstop_history_pruned_rows_total",
                 "Run history rows deleted past the retention.")


def ingest_spec(batch: int = 256) -> ConsumerSpec:
    """Every run, log line and usage report, in stream order, a batch per transaction."""
    return ConsumerSpec(
        stream=INGEST.name, durable=INGEST_CONSUMER,
        filter_subjects=[RunReported.subject_filter(), RunLogged.subject_filter(),
                         UsageReported.subject_filter()],
        batch=batch, max_ack_pending=batch * 4)


ALERTS_SPEC = ConsumerSpec(
    stream=ALERTS.name, durable=ALERTS_CONSUMER, filter_subjects=[AlertChanged.subject_filter()])


class History:
    def __init__(self, settings: PortalSettings, runtime: Runtime,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.clock = clock or SystemClock()

    async def on_ingest(self, events: list[Event]) -> None:
        limit = self.settings.history_log_excerpt_bytes
        await self.runtime.db.run(lambda s: apply_ingest(s, events, limit), LANE)

    async def on_alert(self, event: Event) -> None:
        await self.runtime.db.run(lambda s: apply_alert(s, event), LANE)

    async def prune_once(self) -> int:
        gone = await prune(self.runtime.db, self.clock.now(),
                           self.settings.history_retention_days,
                           self.settings.history_prune_batch)
        PRUNED.inc(gone)
        if gone:
            log.info("run history pruned", extra={"event": "history_pruned", "rows": gone})
        return gone

    async def prune_forever(self) -> None:
        stop = self.runtime.stop
        while not stop.is_set():
            try:
                await self.prune_once()
            except Exception:  # the database away: try again next time
                log.exception("pruning the run history failed")
            if await pause(stop, self.settings.history_prune_interval_seconds):
                return


async def run_projection(settings: PortalSettings, runtime: Runtime,
                         clock: Clock | None = None) -> None:
    """Keep the history tables up to date until ``runtime.stop`` is set."""
    history = History(settings, runtime, clock)
    bus, stop = runtime.bus, runtime.stop
    await asyncio.gather(
        consume_ordered(bus, ingest_spec(settings.history_batch), history.on_ingest, stop),
        consume(bus, ALERTS_SPEC, history.on_alert, stop),
        history.prune_forever(),
    )
