"""The event bus over NATS JetStream: the connection, the topology, publishing.

Publishing waits for JetStream's acknowledgement and sets ``Nats-Msg-Id`` to the event id, so a
retried publish is stored once. Consuming (ack after the work is durable, retries, dead letters)
is :mod:`shared.consumers`'s; this module only binds a consumer's pull subscription.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, SubjectTransform
from nats.js.errors import BadRequestError, NotFoundError
from prometheus_client import Counter

from shared.events import Event
from shared.failures import PermanentFailure as PermanentFailure  # handlers raise it from here
from shared.natsaccess import NatsAccess
from shared.pubacks import PubAcks
from shared.streams import ALL_STREAMS, ConsumerSpec, StreamSpec

log = logging.getLogger(__name__)

PUBLISHED = Counter("backstop_bus_published_total", "Events stored by JetStream.", ["category"])
PUBLISH_FAILURES = Counter(
    "backstop_bus_publish_failures_total", "Publishes JetStream did not confirm.", ["category"]
)


@cache
def _published(category: str) -> Any:
    """The labelled counter, looked up once: ``labels()`` takes a lock on every call."""
    return PUBLISHED.labels(category)


class BusUnavailable(RuntimeError):
    """JetStream could not confirm the store (NATS down, timeout, no stream)."""


class Bus:
    def __init__(self, servers: str | NatsAccess, *, name: str = "backstop") -> None:
        """``servers``: a URL (credentials may be in it), or how to reach NATS in full."""
        self._access = servers if isinstance(servers, NatsAccess) else NatsAccess(servers)
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._acks: PubAcks | None = None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("bus is not connected")
        return self._js

    @property
    def acks(self) -> PubAcks:
        if self._acks is None:
            raise BusUnavailable("bus is not connected")
        return self._acks

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self, *, ensure_topology: bool = True) -> None:
        self._nc = await nats.connect(
            **self._access.connect_options(),
            name=self._name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnect,
        )
        self._js = self._nc.jetstream(timeout=5)
        self._acks = PubAcks(self._nc)
        await self._acks.start()
        if ensure_topology:
            await self.ensure_streams(ALL_STREAMS)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def _on_disconnect(self) -> None:
        if self._nc is not None:  # not our own close(): a clean stop is quiet
            log.warning("nats disconnected")

    async def ensure_streams(self, specs: list[StreamSpec]) -> None:
        for spec in specs:
            config = StreamConfig(
                name=spec.name,
                subjects=spec.subjects,
                duplicate_window=spec.duplicate_window_seconds,
                max_age=spec.max_age_seconds,
                subject_transform=SubjectTransform(
                    src=spec.subject_transform[0], dest=spec.subject_transform[1]
                ) if spec.subject_transform else None,
            )
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                # Exists with another config (e.g. an older release): bring it up to date.
                await self.js.update_stream(config)

    async def publish(self, event: Event, *, timeout: float = 5.0) -> bool:
        """Store ``event``; returns True if JetStream already had it (a duplicate)."""
        try:
            duplicate = await self.acks.publish(
                event.subject(), event.encode(), event.event_id, timeout
            )
        except Exception as exc:
            PUBLISH_FAILURES.labels(event.category).inc()
            raise BusUnavailable(f"JetStream did not store the event: {exc!r}") from exc
        _published(event.category).inc()
        return duplicate

    async def subscribe(self, spec: ConsumerSpec) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.ALL if spec.ack_policy == "all" else AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_seconds,
            max_ack_pending=spec.max_ack_pending,
            filter_subjects=spec.filter_subjects,
        )
        try:
            info = await self.js.consumer_info(spec.stream, spec.durable)
            if sorted(info.config.filter_subjects or [info.config.filter_subject or ""]) != sorted(
                spec.filter_subjects
            ):
                await self.js.add_consumer(spec.stream, config)  # updates the filter in place
        except NotFoundError:
            await self.js.add_consumer(spec.stream, config)
        return await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)

    async def tail(self, stream: str, subject: str) -> JetStreamContext.PushSubscription:
        """An ordered, ephemeral consumer of what ``stream`` stores from now on: for views that
        show events as they happen (no ack, nothing kept for it when it goes; NATS recreates it
        after a gap, a reconnect or a server restart)."""
        return await self.js.subscribe(
            subject, stream=stream, ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )

    async def close(self) -> None:
        """Drain: finish in-flight work and flush pending publishes, then disconnect."""
        if self._nc is None:
            return
        nc, self._nc, self._js, self._acks = self._nc, None, None, None
        try:
            if nc.is_connected:
                await asyncio.wait_for(nc.drain(), timeout=10)
            else:
                await nc.close()
        except Exception as exc:
            log.warning("nats drain failed: %r", exc)
            await nc.close()
