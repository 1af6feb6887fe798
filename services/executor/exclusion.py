"""Never two tasks on one target at once, across every executor replica: target leases.

A lease is an entry in the JetStream key-value bucket ``backstop_executor_targets``, one key per
target, written with a per-entry TTL (``Nats-TTL``):

- **taking** it is a create that succeeds only when the key holds nothing (JetStream checks the
  subject's last sequence atomically, so of two replicas racing for a target exactly one wins);
- the holder **renews** it every third of the TTL with a write conditional on the revision it
  holds, so nobody else's lease is ever overwritten, and a holder that finds its revision gone
  knows its lease was lost;
- a holder that dies stops renewing, and the server **removes** the entry when its TTL runs
  out: the target is free again after at most ``ttl`` seconds, with no clean-up by anyone;
- a holder that finishes **releases** it with a delete conditional on its revision.

Why the bus and not the database: the triggers already travel over JetStream, so the executor
needs nothing else to coordinate; expiry is done by the server's clock, not by comparing
replicas' clocks; and waiting replicas do not poll the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nats.js import api
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.bus import Bus
from shared.events import utcnow
from shared.streams import EXECUTOR_TARGETS

log = logging.getLogger(__name__)

_KEY_SAFE = re.compile(r"[A-Za-z0-9_=-]+")
# JetStream's "wrong last sequence" errors (an older and a newer code).
_WRONG_LAST = (10071, 10164)


class LeaseLost(RuntimeError):
    """The holder's lease on a target lapsed (it could not renew in time) or was taken."""


def target_key(target: str) -> str:
    """A KV key for any target name (dots and other characters are encoded, never mixed up)."""
    if _KEY_SAFE.fullmatch(target):
        return f"t.{target}"
    return f"x.{target.encode().hex()}"


@dataclass
class Lease:
    target: str
    revision: int
    # Set when the lease could not be renewed: the task should stop, someone else may start.
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class TargetLeases:
    """Per-target exclusion for one replica (``owner``)."""

    def __init__(self, bus: Bus, owner: str, *, ttl: float = 30.0,
                 poll: float = 0.2) -> None:
        if ttl < 3:
            raise ValueError("a target lease lasts at least 3 seconds (renewed every third)")
        self.bus = bus
        self.owner = owner
        self.ttl = int(ttl)
        self.poll = poll
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.bus.bucket(EXECUTOR_TARGETS)
        return self._kv

    def _value(self) -> bytes:
        return json.dumps({"owner": self.owner, "since": utcnow().isoformat()}).encode()

    async def try_take(self, target: str) -> Lease | None:
        """The lease, or None when another holder has it."""
        kv = await self._bucket()
        try:
            revision = await kv.create(target_key(target), self._value(), msg_ttl=self.ttl)
        except KeyWrongLastSequenceError:
            return None
        return Lease(target, revision)

    async def take(self, target: str, stop: asyncio.Event | None = None) -> Lease | None:
        """Wait until the lease is ours (None if ``stop`` is set first)."""
        while stop is None or not stop.is_set():
            lease = await self.try_take(target)
            if lease is not None:
                return lease
            await asyncio.sleep(self.poll)
        return None

    async def renew(self, lease: Lease) -> None:
        """Extend the lease by a full TTL; :class:`LeaseLost` when it is not ours any more."""
        await self._bucket()
        headers = {api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(lease.revision)}
        subject = f"$KV.{EXECUTOR_TARGETS.name}.{target_key(lease.target)}"
        try:
            ack = await self.bus.js.publish(subject, self._value(), headers=headers,
                                            msg_ttl=self.ttl)
        except APIError as exc:
            if exc.err_code in _WRONG_LAST:
                lease.lost.set()
                raise LeaseLost(f"lease on {lease.target} lapsed or was taken") from exc
            raise
        lease.revision = ack.seq

    async def release(self, lease: Lease) -> None:
        """Free the target, if the lease is still ours."""
        kv = await self._bucket()
        with contextlib.suppress(KeyWrongLastSequenceError, APIError):
            await kv.delete(target_key(lease.target), last=lease.revision)

    async def holder(self, target: str) -> str | None:
        """Who holds ``target`` now (None: nobody)."""
        kv = await self._bucket()
        try:
            entry = await kv.get(target_key(target))
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return str(json.loads(entry.value)["owner"])

    async def keep(self, lease: Lease) -> None:
        """Renew every third of the TTL until cancelled or lost; a renewal that fails for a
        passing reason (NATS away a moment) is tried again until the lease would lapse."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew(lease)
                renewed = loop.time()
            except LeaseLost:
                log.error("target %s: lease lost", lease.target)
                return
            except Exception as exc:
                if loop.time() - renewed >= self.ttl:
                    lease.lost.set()
                    log.error("target %s: lease not renewed in time: %r", lease.target, exc)
                    return
                log.warning("target %s: renewing the lease failed: %r", lease.target, exc)

    @contextlib.asynccontextmanager
    async def hold(self, target: str, stop: asyncio.Event | None = None
                   ) -> AsyncIterator[Lease | None]:
        """Hold ``target`` for the block (renewed meanwhile, released after). Yields None when
        ``stop`` was set before the lease became ours."""
        lease = await self.take(target, stop)
        if lease is None:
            yield None
            return
        keeper = asyncio.create_task(self.keep(lease), name=f"lease-{target}")
        try:
            yield lease
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            if not lease.lost.is_set():
                await self.release(lease)


# A lease no task of this replica uses any more is kept this long before it is released: the
# next task on the same target (a plan runs a target's tasks one after the other) takes it over
# without two round trips to JetStream.
LINGER_SECONDS = 0.5


@dataclass
class _Held:
    lease: Lease
    keeper: asyncio.Task[None]
    releasing: asyncio.Task[None] | None = None


class ReplicaTargetLocks:
    """The flow's ``TargetLocks`` port for one replica: its tasks on a target take turns on an
    in-process lock, and the replica holds the target's lease while any of them needs it (and
    :data:`LINGER_SECONDS` more), so a target's consecutive tasks cost one lease, not one each.
    """

    def __init__(self, leases: TargetLeases, linger: float = LINGER_SECONDS) -> None:
        self.leases = leases
        self.linger = linger
        self._turns: dict[str, asyncio.Lock] = {}
        self._held: dict[str, _Held] = {}

    @contextlib.asynccontextmanager
    async def hold(self, target: str, holder: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(target, asyncio.Lock())
        async with turn:
            held = self._held.get(target)
            if held is not None and held.releasing is not None:
                held.releasing.cancel()
                held.releasing = None
            if held is None or held.lease.lost.is_set():
                if held is not None:  # lost meanwhile: take it anew
                    await self._drop(target)
                lease = await self.leases.take(target)
                assert lease is not None  # no stop event: waits until ours
                held = _Held(lease, asyncio.create_task(self.leases.keep(lease)))
                self._held[target] = held
            try:
                yield
            finally:
                held.releasing = asyncio.create_task(self._release_later(target))

    async def _release_later(self, target: str) -> None:
        await asyncio.sleep(self.linger)
        held = self._held.get(target)
        if held is None or self._turns[target].locked():
            return
        await asyncio.shield(self._drop(target))

    async def _drop(self, target: str) -> None:
        held = self._held.pop(target, None)
        if held is None:
            return
        held.keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await held.keeper
        if not held.lease.lost.is_set():
            await self.leases.release(held.lease)

    async def close(self) -> None:
        """Release every lease now (the replica stops)."""
        for target in list(self._held):
            held = self._held[target]
            if held.releasing is not None:
                held.releasing.cancel()
            await self._drop(target)
