"""Live updates: alert transitions pushed to open pages as Server-Sent Events.

One :class:`AlertFeed` per portal process follows the alert stream with an ordered, ephemeral
consumer (``Bus.tail``: only what arrives from now on, nothing kept for it on the server) and
hands each transition to the open ``/live`` streams whose viewer's scope admits its tenant.
``static/live.js`` shows it on the page at once; pages work without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from services.portal.access import current_viewer
from services.portal.state import portal
from services.portal.users import Viewer
from shared.bus import Bus
from shared.events import AlertChanged, decode
from shared.scopes import Scope
from shared.streams import ALERTS
from shared.wakeup import pause

log = logging.getLogger(__name__)

router = APIRouter()

HEARTBEAT_SECONDS = 15.0
WAIT_SECONDS = 0.5
QUEUE_SIZE = 100  # a stream that falls this far behind loses the oldest (the page can reload)


def message_of(event: AlertChanged) -> dict[str, Any]:
    return {
        "fingerprint": event.fingerprint, "kind": event.kind, "state": event.state,
        "severity": event.severity, "job": event.job, "summary": event.summary,
        "account_id": event.tenant.account, "at": event.last_changed.isoformat(),
        "url": f"/alerts/{event.fingerprint}",
    }


class AlertFeed:
    def __init__(self, bus: Bus | None) -> None:
        self._bus = bus
        self._listeners: set[tuple[Scope, asyncio.Queue[dict[str, Any]]]] = set()
        self.following = asyncio.Event()

    @contextlib.contextmanager
    def listen(self, scope: Scope) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        entry = (scope, queue)
        self._listeners.add(entry)
        try:
            yield queue
        finally:
            self._listeners.discard(entry)

    def publish(self, event: AlertChanged) -> None:
        message = message_of(event)
        for scope, queue in list(self._listeners):
            if not scope.admits(event.tenant.reseller, event.tenant.customer):
                continue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the alert stream until ``stop``; resubscribes if the subscription breaks."""
        if self._bus is None:
            return
        while not stop.is_set():
            try:
                sub = await self._bus.tail(ALERTS.name, AlertChanged.subject_filter())
            except Exception as exc:
                log.warning("portal: following alerts failed: %r", exc)
                if await pause(stop, 1.0):
                    return
                continue
            self.following.set()
            try:
                while not stop.is_set():
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except TimeoutError:
                        continue
                    try:
                        event = decode(msg.data)
                    except ValueError:
                        continue
                    if isinstance(event, AlertChanged):
                        self.publish(event)
            except Exception as exc:
                log.warning("portal: alert subscription broke: %r", exc)
            finally:
                self.following.clear()
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()


async def _events(request: Request, viewer: Viewer) -> AsyncIterator[str]:
    state = portal(request)
    stop = state.stop
    with state.feed.listen(viewer.scope) as queue:
        yield "retry: 2000\n\n"
        quiet = 0.0
        while not stop.is_set():
            try:
                # Short waits: a stopping server must not wait for a heartbeat to end a stream.
                message = await asyncio.wait_for(queue.get(), timeout=WAIT_SECONDS)
            except TimeoutError:
                quiet += WAIT_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    if await request.is_disconnected():
                        return
                    yield ": still here\n\n"
                continue
            quiet = 0.0
            yield f"event: alert\ndata: {json.dumps(message)}\n\n"


@router.get("/live", include_in_schema=False)
async def live(request: Request, viewer: Viewer = Depends(current_viewer)) -> StreamingResponse:
    """The viewer's alert transitions as Server-Sent Events (``event: alert``, JSON data)."""
    return StreamingResponse(_events(request, viewer), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
