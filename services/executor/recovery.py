"""Crash safety: what a dead executor left behind is finished by the replicas that live.

- **Who is alive.** Each replica keeps an entry ``replica.<id>`` in the ``backstop_executor_state``
  bucket, written with a TTL and renewed every third of it (:class:`Replicas`). A replica that
  dies (SIGKILL, a lost machine) disappears from the bucket when its TTL runs out.
- **Unquiesce intents** (:class:`DurableIntents`, the flow's ``UnquiesceIntents`` port) are
  entries ``unquiesce.<digest>`` written, and acknowledged by JetStream, *before* the flow
  quiesces a target, and deleted once it is unquiesced. They name the replica that wrote them.
- **The sweep** (:class:`Recovery`), run by every replica every few seconds: an intent whose
  replica is gone is finished (the target's lease taken, so no task of a live replica runs on it
  meanwhile; the plugin's ``unquiesce``; the intent deleted), and the plan executions whose
  runner is gone are ended as ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from nats.js.kv import KeyValue
from prometheus_client import Counter

from services.executor.exclusion import TargetLeases
from services.executor.ports import UnquiesceIntent
from shared.bus import Bus
from shared.events import utcnow
from shared.streams import EXECUTOR_STATE
from shared.wakeup import pause

log = logging.getLogger(__name__)

RECOVERED = Counter("backstop_executor_recovered_total",
                    "Work of dead replicas finished by this one.", ["what"])

# Finishes one intent: the plugin's unquiesce of the target (item) it names.
Unquiescer = Callable[[UnquiesceIntent], Awaitable[None]]
# Ends the executions whose runner is not among the live replicas; returns how many.
Interrupter = Callable[[set[str]], Awaitable[int]]


def _key_part(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def _entries(kv: KeyValue, pattern: str) -> list[KeyValue.Entry]:
    """The current entries under ``pattern`` (deleted and expired ones left out)."""
    watcher = await kv.watch(pattern, ignore_deletes=True)
    found: list[KeyValue.Entry] = []
    try:
        while True:
            entry = await watcher.updates(timeout=5)
            if entry is None:
                break
            if entry.value:
                found.append(entry)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
    return found


class Replicas:
    """This replica's presence, and who else is there."""

    def __init__(self, bus: Bus, replica_id: str, labels: dict[str, str] | None = None, *,
                 ttl: float = 15.0) -> None:
        self.bus = bus
        self.replica_id = replica_id
        self.labels = labels or {}
        self.ttl = max(3, int(ttl))
        self.running: set[str] = set()  # plan executions this replica runs (shown in status)
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.bus.bucket(EXECUTOR_STATE)
        return self._kv

    @property
    def key(self) -> str:
        return f"replica.{_key_part(self.replica_id)}"

    async def beat(self) -> None:
        await self._bucket()
        value = json.dumps({"replica": self.replica_id, "labels": self.labels,
                            "seen_at": utcnow().isoformat(), "running": sorted(self.running)})
        await self.bus.js.publish(f"$KV.{EXECUTOR_STATE.name}.{self.key}", value.encode(),
                                  msg_ttl=self.ttl)

    async def alive(self) -> dict[str, dict[str, Any]]:
        """The live replicas by id, with what each last said of itself."""
        kv = await self._bucket()
        found = {}
        for entry in await _entries(kv, "replica.>"):
            data = json.loads(entry.value or b"{}")
            found[str(data["replica"])] = data
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the presence fresh until ``stop``; then leave at once (not after the TTL)."""
        try:
            while not stop.is_set():
                try:
                    await self.beat()
                except Exception as exc:  # NATS away a moment: the next beat is soon
                    log.warning("executor presence not renewed: %r", exc)
                await pause(stop, self.ttl / 3)
        finally:
            with contextlib.suppress(Exception):
                kv = await self._bucket()
                await kv.delete(self.key)


class DurableIntents:
    """Unquiesce intents in JetStream: recorded before quiescing, cleared after unquiescing."""

    def __init__(self, bus: Bus, replica_id: str) -> None:
        self.bus = bus
        self.replica_id = replica_id
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.bus.bucket(EXECUTOR_STATE)
        return self._kv

    @staticmethod
    def key(intent: UnquiesceIntent) -> str:
        return "unquiesce." + _key_part(
            f"{intent.execution_id}/{intent.task_id}/{intent.target}/{intent.item}")

    async def record(self, intent: UnquiesceIntent) -> None:
        kv = await self._bucket()
        value = {"intent": asdict(intent), "replica": self.replica_id,
                 "recorded_at": utcnow().isoformat()}
        await kv.put(self.key(intent), json.dumps(value, default=str).encode())

    async def clear(self, intent: UnquiesceIntent) -> None:
        kv = await self._bucket()
        await kv.delete(self.key(intent))

    async def open(self) -> list[tuple[str, UnquiesceIntent]]:
        """Every intent not cleared, with the replica that recorded it."""
        kv = await self._bucket()
        found = []
        for entry in await _entries(kv, "unquiesce.>"):
            data = json.loads(entry.value or b"{}")
            found.append((str(data["replica"]), UnquiesceIntent(**data["intent"])))
        return found


class Recovery:
    """Finishes the work of replicas that died: their quiesced targets, their executions."""

    def __init__(self, replicas: Replicas, intents: DurableIntents, leases: TargetLeases,
                 unquiesce: Unquiescer, interrupt: Interrupter, *,
                 interval: float = 5.0) -> None:
        self.replicas = replicas
        self.intents = intents
        self.leases = leases
        self.unquiesce = unquiesce
        self.interrupt = interrupt
        self.interval = interval

    async def sweep(self) -> tuple[int, int]:
        """One pass; returns (intents finished, executions interrupted)."""
        alive = set(await self.replicas.alive()) | {self.replicas.replica_id}
        finished = 0
        for replica, intent in await self.intents.open():
            if replica in alive:
                continue
            lease = await self.leases.try_take(intent.target)
            if lease is None:
                continue  # a task runs on it now (its executor quiesced it anew, or a
                # replica sweeping too): the next pass looks again
            try:
                await self.unquiesce(intent)
                await self.intents.clear(intent)
                finished += 1
                RECOVERED.labels("unquiesce").inc()
                log.warning("unquiesced %s (item %s) left quiesced by dead replica %s",
                            intent.target, intent.item, replica)
            except Exception as exc:
                log.error("unquiescing %s for dead replica %s failed, retrying later: %r",
                          intent.target, replica, exc)
            finally:
                await self.leases.release(lease)
        interrupted = await self.interrupt(alive)
        if interrupted:
            RECOVERED.labels("interrupted").inc(interrupted)
            log.warning("%d plan executions of dead replicas ended as interrupted", interrupted)
        return finished, interrupted

    async def run(self, stop: asyncio.Event) -> None:
        while not await pause(stop, self.interval):
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("recovery sweep failed: %r", exc)

