"""Consuming the bus: durable pull consumers that ack only after the handler's work is durable.

Two kinds share one way of judging a message. A message that cannot be decoded, or was delivered
more than ``max_deliver`` times without an ack (the process died handling it), goes to the dead
letters; a handler failing for a passing reason is retried after the consumer's back-off; one
failing permanently (see :mod:`shared.failures`) or on its last attempt goes to the dead letters
with the reason, and is then acked: never lost, never looping.

- :func:`consume` hands over one event at a time; a failing message is given back to JetStream
  with a delay, and the messages behind it go on.
- :func:`consume_ordered` hands over batches in stream order; a failing message is retried in
  place, holding up the ones behind it, as nothing may overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram

from shared.bus import Bus
from shared.events import Event, UnknownEvent, decode
from shared.failures import describe, is_permanent
from shared.streams import DEAD_LETTER_PREFIX, STREAMS_BY_NAME, ConsumerSpec
from shared.wakeup import pause

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
# Applies a batch all-or-nothing (one transaction), in the order given.
BatchHandler = Callable[[list[Event]], Awaitable[None]]

PROCESSED = Counter(
    "backstop_bus_messages_total", "Messages handled by consumers.", ["consumer", "outcome"]
)
DEAD_LETTERED = Counter(
    "backstop_bus_dead_letters_total", "Messages moved to the dead-letter stream.", ["consumer"]
)
HANDLE_SECONDS = Histogram(
    "backstop_bus_handle_seconds", "Time a consumer spends on one message.", ["consumer"]
)


# Awaited before every fetch: returns once the consumer may take more messages (e.g. a free
# slot for the work they start), or False to end consumption.
Gate = Callable[[], Awaitable[bool]]


async def consume(
    bus: Bus, spec: ConsumerSpec, handle: Handler, stop: asyncio.Event, *,
    gate: Gate | None = None,
) -> None:
    """Feed ``handle`` one event at a time until ``stop`` is set.

    ``gate`` holds back fetching while the service cannot take more work, so messages stay in
    the stream for other replicas instead of waiting, unacked, in this one.
    """
    await _Plain(bus, spec, stop).run(handle, gate)


async def consume_ordered(
    bus: Bus, spec: ConsumerSpec, handle: BatchHandler, stop: asyncio.Event, *,
    tick: Callable[[], Awaitable[None]] | None = None,
    may_fetch: Callable[[], bool] = lambda: True,
) -> None:
    """Feed ``handle`` batches in stream order until ``stop`` is set; one task per consumer.

    Unlike :func:`consume`, a failing message never lets a later one overtake it: the batch is
    retried one message at a time, in place, and a message that keeps failing goes to the dead
    letters before the next one is handled. ``tick`` runs in the same task after every fetch
    (time-driven work that must not interleave with the handler); ``may_fetch`` is asked before
    every fetch, and False ends consumption (e.g. the right to the messages may have lapsed:
    better not to take any).
    """
    await _Ordered(bus, spec, stop).run(handle, tick, may_fetch)


def _event_or_reason(spec: ConsumerSpec, msg: Msg) -> Event | str:
    """The message's event, or why it goes to the dead letters without being handled."""
    delivered = msg.metadata.num_delivered
    if delivered > spec.max_deliver:
        # Only reachable when the process died while handling it: a poison message.
        return f"delivered {delivered} times without an ack"
    try:
        return decode(msg.data)
    except (UnknownEvent, ValueError) as exc:
        return f"undecodable: {exc}"


def _give_up(spec: ConsumerSpec, exc: Exception, failures: int) -> str | None:
    """Why a message that failed ``failures`` times in a row, last with ``exc``, goes to the
    dead letters; None: it is tried again after ``spec.backoff.delay(failures)``."""
    if is_permanent(exc):
        return f"permanent failure: {describe(exc)}"
    if failures >= spec.max_deliver:
        return f"failed {failures} times, last: {exc!r}"
    return None


def _published_subject(stream: str, stored: str) -> str:
    spec = STREAMS_BY_NAME.get(stream)
    return spec.published_subject(stored) if spec else stored


class _Consumer:
    """What both kinds share: the subscription, fetching and the dead-letter path."""

    def __init__(self, bus: Bus, spec: ConsumerSpec, stop: asyncio.Event) -> None:
        self.bus = bus
        self.spec = spec
        self.stop = stop

    @contextlib.asynccontextmanager
    async def _subscription(self) -> AsyncIterator[JetStreamContext.PullSubscription]:
        sub = await self.bus.subscribe(self.spec)
        try:
            yield sub
        finally:
            # A pull subscription left open makes the connection's drain wait forever.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _fetch(
        self, sub: JetStreamContext.PullSubscription, timeout: float = 1.0
    ) -> list[Msg] | None:
        """The next messages (maybe none); None once the connection is closed for good."""
        try:
            return await self._fetch_available(sub, self.spec.batch, timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
            return None
        except Exception as exc:  # NATS briefly away: reconnect handles it, we wait
            log.warning("fetch failed on %s: %r", self.spec.durable, exc)
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

    async def _dead_letter(self, msg: Msg, reason: str) -> bool:
        """Copy ``msg`` to the dead-letter stream; False when JetStream did not store it.
        Acking the original is the caller's (only it knows what else an ack would cover)."""
        spec = self.spec
        headers: dict[str, Any] = {
            "Backstop-Dead-Letter-Reason": reason[:1000],
            # As published: a replay from the dead letters goes through the same transform.
            "Backstop-Original-Subject": _published_subject(spec.stream, msg.subject),
            "Backstop-Original-Stream": spec.stream,
            "Backstop-Original-Sequence": str(msg.metadata.sequence.stream),
            "Nats-Msg-Id": f"dlq:{spec.durable}:{msg.metadata.sequence.stream}",
        }
        try:
            await self.bus.js.publish(
                f"{DEAD_LETTER_PREFIX}.{spec.durable}", msg.data, headers=headers)
        except Exception as exc:
            log.error("dead-letter publish failed for %s: %r", spec.durable, exc)
            return False
        log.error("%s: message %s dead-lettered: %s",
                  spec.durable, msg.metadata.sequence.stream, reason)
        DEAD_LETTERED.labels(spec.durable).inc()
        PROCESSED.labels(spec.durable, "dead_letter").inc()
        return True


class _Plain(_Consumer):
    async def run(self, handle: Handler, gate: Gate | None = None) -> None:
        async with self._subscription() as sub:
            while not self.stop.is_set():
                if gate is not None and not await gate():
                    return
                msgs = await self._fetch(sub)
                if msgs is None:
                    return
                for msg in msgs:
                    await self._deliver(msg, handle)

    async def _deliver(self, msg: Msg, handle: Handler) -> None:
        spec = self.spec
        event = _event_or_reason(spec, msg)
        if isinstance(event, str):
            await self._drop(msg, event)
            return
        try:
            with HANDLE_SECONDS.labels(spec.durable).time():
                await handle(event)
        except Exception as exc:
            delivered = msg.metadata.num_delivered
            reason = _give_up(spec, exc, delivered)
            if reason is not None:
                await self._drop(msg, reason)
                return
            delay = spec.backoff.delay(delivered)
            log.warning("%s: handler failed (delivery %d), retry in %ss: %r",
                        spec.durable, delivered, delay, exc)
            PROCESSED.labels(spec.durable, "retry").inc()
            await msg.nak(delay=delay)
            return
        await msg.ack()
        PROCESSED.labels(spec.durable, "ok").inc()

    async def _drop(self, msg: Msg, reason: str) -> None:
        """Dead-letter and ack; if the dead letters do not store it, leave it to redelivery
        rather than lose it."""
        if await self._dead_letter(msg, reason):
            await msg.ack()
        else:
            await msg.nak(delay=self.spec.backoff.longest)


class _Ordered(_Consumer):
    async def run(
        self, handle: BatchHandler, tick: Callable[[], Awaitable[None]] | None,
        may_fetch: Callable[[], bool],
    ) -> None:
        async with self._subscription() as sub:
            await self._await_earlier_deliveries()
            while not self.stop.is_set() and may_fetch():
                msgs = await self._fetch(sub)
                if msgs is None:
                    return
                if msgs:
                    await self._deliver(msgs, handle)
                if tick is not None:
                    await tick()

    async def _await_earlier_deliveries(self) -> None:
        """Before an ordered consumer's first ack: messages an earlier owner (a crashed process,
        a replica that lost its lease) took and never acked come back only after the ack wait,
        and an ack "all" of later ones would drop them. So wait for them to come back first."""
        spec = self.spec
        if spec.ack_policy != "all":
            return
        while True:
            try:
                info = await self.bus.js.consumer_info(spec.stream, spec.durable)
                break
            except Exception as exc:  # NATS briefly away: ask again, never guess
                log.warning("%s: consumer info failed: %r", spec.durable, exc)
                if await pause(self.stop, 0.5):
                    return
        if info.num_ack_pending:
            log.warning("%s: %d messages of an earlier owner unacked; waiting %.0fs for them",
                        spec.durable, info.num_ack_pending, spec.ack_wait_seconds)
            await pause(self.stop, spec.ack_wait_seconds)

    async def _deliver(self, msgs: list[Msg], handle: BatchHandler) -> None:
        spec = self.spec
        batch: list[tuple[Msg, Event]] = []
        # With ack "all", acking a dead letter now would also ack the earlier, unhandled ones:
        # the batch's final ack covers them instead.
        ack_now = spec.ack_policy != "all"
        for msg in msgs:
            event = _event_or_reason(spec, msg)
            if not isinstance(event, str):
                batch.append((msg, event))
                continue
            if not await self._dead_letter_in_place(msg, event, msgs):
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
            await self._one_by_one(msgs, batch, handle, exc)
            return
        if spec.ack_policy == "all":
            await msgs[-1].ack()  # covers the whole batch, dead letters included
        else:
            for msg, _ in batch:
                await msg.ack()
        PROCESSED.labels(spec.durable, "ok").inc(len(batch))

    async def _one_by_one(self, msgs: list[Msg], batch: list[tuple[Msg, Event]],
                          handle: BatchHandler, exc: Exception) -> None:
        """After a batch failed: find the culprit, handling each message on its own."""
        # A batch of one failing permanently needs no retry to find the culprit.
        failed = exc if len(batch) == 1 and is_permanent(exc) else None
        if failed is None:
            log.warning("%s: batch of %d failed, retrying one by one: %r",
                        self.spec.durable, len(batch), exc)
        position = {id(msg): i for i, msg in enumerate(msgs)}
        for msg, event in batch:
            waiting = msgs[position[id(msg)]:]
            if not await self._retry_in_place(waiting, event, handle, failed):
                # Stopping (e.g. the partition moves on): give the rest back now. Left
                # unacked, the next owner's ack "all" would cover them unhandled.
                await self._give_back(msgs, msg.metadata.sequence.stream)
                return
        if self.spec.ack_policy == "all" and not msgs[-1].is_acked:
            await msgs[-1].ack()  # covers dead letters after the last handled one

    @staticmethod
    async def _give_back(msgs: list[Msg], from_sequence: int) -> None:
        for msg in msgs:
            if msg.metadata.sequence.stream >= from_sequence:
                with contextlib.suppress(Exception):  # else it returns after the ack wait
                    await msg.nak()

    async def _retry_in_place(
        self, waiting: list[Msg], event: Event, handle: BatchHandler,
        failed: Exception | None = None,
    ) -> bool:
        """Handle one message (``waiting[0]``, the others of its batch wait behind it) until it
        succeeds or is dead-lettered; False when stopping.

        ``failed``: how the message just failed on its own, if it did. Only transient failures
        are waited out, as waiting holds up everything behind the message.
        """
        spec = self.spec
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
            reason = _give_up(spec, exc, attempt)
            if reason is not None:
                if not await self._dead_letter_in_place(msg, reason, waiting):
                    return False
                await msg.ack()
                return True
            PROCESSED.labels(spec.durable, "retry").inc()
            if await self._hold(waiting, spec.backoff.delay(attempt)):
                return False
        return True

    async def _dead_letter_in_place(self, msg: Msg, reason: str, waiting: list[Msg]) -> bool:
        """Dead-letter ``msg``, however long the dead-letter stream takes to store it: nothing
        behind it may be acked before (ack "all" would drop it), nor given back (each
        redelivery counts towards max_deliver). False when stopping."""
        failures = 0
        while not await self._dead_letter(msg, reason):
            failures += 1
            if await self._hold(waiting, self.spec.backoff.delay(failures)):
                return False
        return True

    async def _hold(self, waiting: list[Msg], delay: float) -> bool:
        """Wait ``delay`` keeping ``waiting`` ours; True when stopping. Past the ack wait they
        would come again, each time counting towards max_deliver though they never failed."""
        until = time.monotonic() + delay
        while (left := until - time.monotonic()) > 0:
            for held in waiting:
                with contextlib.suppress(Exception):
                    await held.in_progress()
            if await pause(self.stop, min(left, self.spec.ack_wait_seconds / 2)):
                return True
        return False
