"""The event bus over NATS JetStream.

Publishing waits for JetStream's acknowledgement and sets ``Nats-Msg-Id`` to the event id, so a
retried publish is stored once. Consuming is explicit-ack: a handler's message is acked only after
the handler returned, i.e. after its work is durable. A handler failing for a passing reason is
retried with back-off; a message that keeps failing, fails permanently (see
:mod:`shared.failures`) or cannot be decoded is copied to the dead-letter stream with the reason
and then acked: never lost, never looping, never holding up the messages behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, SubjectTransform
from nats.js.errors import BadRequestError, NotFoundError
from prometheus_client import Counter, Histogram

from shared.events import Event, UnknownEvent, decode
from shared.failures import PermanentFailure as PermanentFailure  # handlers raise it from here
from shared.failures import describe, is_permanent
from shared.natsaccess import NatsAccess
from shared.pubacks import PubAcks
from shared.streams import (
    ALL_STREAMS,
    DEAD_LETTER_PREFIX,
    STREAMS_BY_NAME,
    ConsumerSpec,
    StreamSpec,
)
from shared.wakeup import pause

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
# Applies a batch all-or-nothing (one transaction), in the order given.
BatchHandler = Callable[[list[Event]], Awaitable[None]]

PUBLISHED = Counter("backstop_bus_published_total", "Events stored by JetStream.", ["category"])
PUBLISH_FAILURES = Counter(
    "backstop_bus_publish_failures_total", "Publishes JetStream did not confirm.", ["category"]
)
PROCESSED = Counter(
    "backstop_bus_messages_total", "Messages handled by consumers.", ["consumer", "outcome"]
)
DEAD_LETTERED = Counter(
    "backstop_bus_dead_letters_total", "Messages moved to the dead-letter stream.", ["consumer"]
)
HANDLE_SECONDS = Histogram(
    "backstop_bus_handle_seconds", "Time a consumer spends on one message.", ["consumer"]
)


@cache
def _published(category: str) -> Any:
    """The labelled counter, looked up once: ``labels()`` takes a lock on every call."""
    return PUBLISHED.labels(category)


def _published_subject(stream: str, stored: str) -> str:
    spec = STREAMS_BY_NAME.get(stream)
    return spec.published_subject(stored) if spec else stored


def _permanent(exc: BaseException) -> str:
    return f"permanent failure: {describe(exc)}"


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

    async def consume(self, spec: ConsumerSpec, handle: Handler, stop: asyncio.Event) -> None:
        """Feed ``handle`` one event at a time until ``stop`` is set."""
        sub = await self.subscribe(spec)
        try:
            await self._fetch_loop(spec, sub, handle, stop)
        finally:
            # A pull subscription left open makes the connection's drain wait forever.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def consume_ordered(
        self, spec: ConsumerSpec, handle: BatchHandler, stop: asyncio.Event, *,
        tick: Callable[[], Awaitable[None]] | None = None,
        may_fetch: Callable[[], bool] = lambda: True,
    ) -> None:
        """Feed ``handle`` batches in stream order until ``stop`` is set; one task per consumer.

        Unlike :meth:`consume`, a failing message never lets a later one overtake it: the batch
        is retried one message at a time, in place, and a message that keeps failing goes to the
        dead letters before the next one is handled. ``tick`` runs in the same task after every
        fetch (time-driven work that must not interleave with the handler); ``may_fetch`` is
        asked before every fetch, and False ends consumption (e.g. the right to the messages
        may have lapsed: better not to take any).
        """
        sub = await self.subscribe(spec)
        try:
            await self._await_earlier_deliveries(spec, stop)
            while not stop.is_set() and may_fetch():
                msgs = await self._fetch(spec, sub, 1.0)
                if msgs is None:
                    return
                if msgs:
                    await self._deliver_ordered(spec, msgs, handle, stop)
                if tick is not None:
                    await tick()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _fetch(
        self, spec: ConsumerSpec, sub: JetStreamContext.PullSubscription, timeout: float
    ) -> list[Msg] | None:
        """The next messages (maybe none); None once the connection is closed for good."""
        try:
            return await self._fetch_available(sub, spec.batch, timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
            return None
        except Exception as exc:  # NATS briefly away: reconnect handles it, we wait
            log.warning("fetch failed on %s: %r", spec.durable, exc)
            await asyncio.sleep(0.5)
            return []

    @staticmethod
    async def _fetch_available(
        sub: JetStreamContext.PullSubscription, batch: int, timeout: float
    ) -> list[Msg]:
        """Wait up to ``timeout`` for a first message, then take what is there, up to ``batch``.

        A single ``fetch(batch)`` waits for the whole batch until it expires when fewer
        messages are pending, which would add up to ``timeout`` to every small batch.
        """
        msgs = await sub.fetch(1, timeout=max(0.01, timeout))
        if batch > 1:
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                msgs += await sub.fetch(batch - 1, timeout=0.02)
        return msgs

    async def _deliver_ordered(
        self, spec: ConsumerSpec, msgs: list[Msg], handle: BatchHandler, stop: asyncio.Event
    ) -> None:
        batch: list[tuple[Msg, Event]] = []
        # With ack "all", acking a dead letter now would also ack the earlier, unhandled ones:
        # the batch's final ack covers them instead.
        ack_now = spec.ack_policy != "all"
        for msg in msgs:
            if msg.metadata.num_delivered > spec.max_deliver:
                reason = "delivered too often without an ack"
            else:
                try:
                    batch.append((msg, decode(msg.data)))
                    continue
                except (UnknownEvent, ValueError) as exc:
                    reason = f"undecodable: {exc}"
            if not await self._dead_letter_in_place(spec, msg, reason, msgs, stop):
                await self._give_back(msgs, msgs[0].metadata.sequence.stream)
                return
            if ack_now:
                await msg.ack()
        if not batch:
            if not ack_now:
                await msgs[-1].ack()
            return
        try:
            with HANDLE_SECONDS.labels(spec.durable).time():
                await handle([event for _, event in batch])
        except Exception as exc:
            # A batch of one failing permanently needs no retry to find the culprit.
            failed = exc if len(batch) == 1 and is_permanent(exc) else None
            if failed is None:
                log.warning("%s: batch of %d failed, retrying one by one: %r",
                            spec.durable, len(batch), exc)
            position = {id(msg): i for i, msg in enumerate(msgs)}
            for msg, event in batch:
                waiting = msgs[position[id(msg)]:]
                if not await self._retry_in_place(spec, waiting, event, handle, stop, failed):
                    # Stopping (e.g. the partition moves on): give the rest back now. Left
                    # unacked, the next owner's ack "all" would cover them unhandled.
                    await self._give_back(msgs, msg.metadata.sequence.stream)
                    return
            if not ack_now and not msgs[-1].is_acked:
                await msgs[-1].ack()  # covers dead letters after the last handled one
            return
        if spec.ack_policy == "all":
            await msgs[-1].ack()  # covers the whole batch, dead letters included
        else:
            for msg, _ in batch:
                await msg.ack()
        PROCESSED.labels(spec.durable, "ok").inc(len(batch))

    async def _await_earlier_deliveries(self, spec: ConsumerSpec, stop: asyncio.Event) -> None:
        """Before an ordered consumer's first ack: messages an earlier owner (a crashed process,
        a replica that lost its lease) took and never acked come back only after the ack wait,
        and an ack "all" of later ones would drop them. So wait for them to come back first."""
        if spec.ack_policy != "all":
            return
        while True:
            try:
                info = await self.js.consumer_info(spec.stream, spec.durable)
                break
            except Exception as exc:  # NATS briefly away: ask again, never guess
                log.warning("%s: consumer info failed: %r", spec.durable, exc)
                if await pause(stop, 0.5):
                    return
        if info.num_ack_pending:
            log.warning("%s: %d messages of an earlier owner unacked; waiting %.0fs for them",
                        spec.durable, info.num_ack_pending, spec.ack_wait_seconds)
            await pause(stop, spec.ack_wait_seconds)

    @staticmethod
    async def _give_back(msgs: list[Msg], from_sequence: int) -> None:
        for msg in msgs:
            if msg.metadata.sequence.stream >= from_sequence:
                with contextlib.suppress(Exception):  # else it returns after the ack wait
                    await msg.nak()

    async def _retry_in_place(
        self, spec: ConsumerSpec, waiting: list[Msg], event: Event, handle: BatchHandler,
        stop: asyncio.Event, failed: Exception | None = None,
    ) -> bool:
        """Handle one message (``waiting[0]``, the others of its batch wait behind it) until it
        succeeds or is dead-lettered; False when stopping.

        ``failed``: how the message just failed on its own, if it did. Only transient failures
        are waited out, as waiting holds up everything behind the message.
        """
        msg = waiting[0]
        for attempt in range(1, spec.max_deliver + 1):
            exc = failed
            failed = None
            if exc is None:
                try:
                    await handle([event])
                except Exception as raised:
                    exc = raised
            if exc is None:
                await msg.ack()
                PROCESSED.labels(spec.durable, "ok").inc()
                return True
            if is_permanent(exc) or attempt == spec.max_deliver:
                reason = _permanent(exc) if is_permanent(exc) else (
                    f"failed {attempt} times, last: {exc!r}")
                if not await self._dead_letter_in_place(spec, msg, reason, waiting, stop):
                    return False
                await msg.ack()
                return True
            delay = spec.backoff_seconds[min(attempt - 1, len(spec.backoff_seconds) - 1)]
            PROCESSED.labels(spec.durable, "retry").inc()
            if await self._hold(spec, waiting, stop, delay):
                return False
        return True

    async def _dead_letter_in_place(
        self, spec: ConsumerSpec, msg: Msg, reason: str, waiting: list[Msg],
        stop: asyncio.Event,
    ) -> bool:
        """Dead-letter ``msg`` of an ordered consumer, however long the dead-letter stream
        takes to store it: nothing behind it may be acked before (ack "all" would drop it), nor
        given back (each redelivery counts towards max_deliver). False when stopping."""
        attempt = 0
        while not await self._dead_letter(spec, msg, reason):
            delay = spec.backoff_seconds[min(attempt, len(spec.backoff_seconds) - 1)]
            attempt += 1
            if await self._hold(spec, waiting, stop, delay):
                return False
        return True

    @staticmethod
    async def _hold(spec: ConsumerSpec, waiting: list[Msg], stop: asyncio.Event,
                    delay: float) -> bool:
        """Wait ``delay`` keeping ``waiting`` ours; True when stopping. Past the ack wait they
        would come again, each time counting towards max_deliver though they never failed."""
        until = time.monotonic() + delay
        while (left := until - time.monotonic()) > 0:
            for held in waiting:
                with contextlib.suppress(Exception):
                    await held.in_progress()
            if await pause(stop, min(left, spec.ack_wait_seconds / 2)):
                return True
        return False

    async def _fetch_loop(
        self, spec: ConsumerSpec, sub: JetStreamContext.PullSubscription,
        handle: Handler, stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            msgs = await self._fetch(spec, sub, 1.0)
            if msgs is None:
                return
            for msg in msgs:
                await self._deliver(spec, msg, handle)

    async def _deliver(self, spec: ConsumerSpec, msg: Msg, handle: Handler) -> None:
        delivered = msg.metadata.num_delivered
        if delivered > spec.max_deliver:
            # Only reachable when the process died while handling it: a poison message.
            await self._drop(spec, msg, f"delivered {delivered} times without an ack")
            return
        try:
            event = decode(msg.data)
        except (UnknownEvent, ValueError) as exc:
            await self._drop(spec, msg, f"undecodable: {exc}")
            return
        try:
            with HANDLE_SECONDS.labels(spec.durable).time():
                await handle(event)
        except Exception as exc:
            if is_permanent(exc):
                await self._drop(spec, msg, _permanent(exc))
            else:
                await self._retry_or_drop(spec, msg, delivered, exc)
            return
        await msg.ack()
        PROCESSED.labels(spec.durable, "ok").inc()

    async def _retry_or_drop(
        self, spec: ConsumerSpec, msg: Msg, delivered: int, exc: Exception
    ) -> None:
        if delivered >= spec.max_deliver:
            await self._drop(spec, msg, f"failed {delivered} times, last: {exc!r}")
            return
        delay = spec.backoff_seconds[min(delivered - 1, len(spec.backoff_seconds) - 1)]
        log.warning("%s: handler failed (delivery %d), retry in %ss: %r",
                    spec.durable, delivered, delay, exc)
        PROCESSED.labels(spec.durable, "retry").inc()
        await msg.nak(delay=delay)

    async def _drop(self, spec: ConsumerSpec, msg: Msg, reason: str) -> None:
        """Dead-letter and ack; if the dead letters do not store it, leave it to redelivery
        rather than lose it."""
        if await self._dead_letter(spec, msg, reason):
            await msg.ack()
        else:
            await msg.nak(delay=spec.backoff_seconds[-1])

    async def _dead_letter(self, spec: ConsumerSpec, msg: Msg, reason: str) -> bool:
        """Copy ``msg`` to the dead-letter stream; False when JetStream did not store it.
        Acking the original is the caller's (only it knows what else an ack would cover)."""
        headers: dict[str, Any] = {
            "Backstop-Dead-Letter-Reason": reason[:1000],
            # As published: a replay from the dead letters goes through the same transform.
            "Backstop-Original-Subject": _published_subject(spec.stream, msg.subject),
            "Backstop-Original-Stream": spec.stream,
            "Backstop-Original-Sequence": str(msg.metadata.sequence.stream),
            "Nats-Msg-Id": f"dlq:{spec.durable}:{msg.metadata.sequence.stream}",
        }
        try:
            await self.js.publish(f"{DEAD_LETTER_PREFIX}.{spec.durable}", msg.data, headers=headers)
        except Exception as exc:
            log.error("dead-letter publish failed for %s: %r", spec.durable, exc)
            return False
        log.error("%s: message %s dead-lettered: %s",
                  spec.durable, msg.metadata.sequence.stream, reason)
        DEAD_LETTERED.labels(spec.durable).inc()
        PROCESSED.labels(spec.durable, "dead_letter").inc()
        return True

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
