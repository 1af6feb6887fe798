"""The evaluator's pipeline: partitioned ingest events and deadlines → rules → alert events.

A replica holds leases on some account partitions (see :mod:`leases`) and runs one worker per
partition. A worker consumes its partition's durable consumer in stream order and owns that
partition's engine: events and deadlines of an account are applied by one task, one at a time,
each batch in one transaction with the claims of its events and the outbox of its alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from prometheus_client import Gauge, Histogram
from sqlmodel import Session

from services.evaluator import alerts, store
from services.evaluator.directory_thresholds import DirectoryThresholds
from services.evaluator.engine import Engine
from services.evaluator.facts import Transition
from services.evaluator.leases import LeaseLost, Leases
from services.evaluator.policies import PolicyBook
from services.evaluator.slots import PrioritySlots
from shared.bus import Bus
from shared.clock import Clock, SystemClock
from shared.config import EvaluatorSettings
from shared.consumers import consume_ordered
from shared.db import Database, Lane
from shared.directory import configured
from shared.events import AlertChanged, Event
from shared.outbox import OutboxRelay
from shared.processed import claim_events, forget_before
from shared.runtime import Runtime
from shared.streams import EVALUATOR_PARTITIONS, INGEST, ConsumerSpec, ingest_partition_filter
from shared.tenancy import all_paths
from shared.wakeup import pause

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSUMER = "evaluator"
# Lease upkeep has a thread of its own: busy partition workers must not make the leases lapse.
LEASE_LANE = Lane("evaluator-leases")

PARTITIONS_HELD = Gauge("backstop_evaluator_partitions", "Partitions this replica evaluates.")
DEADLINES = Gauge("backstop_evaluator_deadlines", "Deadlines indexed by this replica.")
REBUILD_SECONDS = Histogram(
    "backstop_evaluator_rebuild_seconds", "Time to load a partition and index its deadlines."
)


def partition_spec(partition: int, batch: int = 256) -> ConsumerSpec:
    return ConsumerSpec(
        stream=INGEST.name, durable=f"{CONSUMER}-p{partition}",
        filter_subjects=[ingest_partition_filter(partition)],
        batch=batch, max_ack_pending=batch * 4, ack_policy="all",
    )


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PartitionWorker:
    """Evaluates one partition: its events in stream order and its deadlines in time order."""

    def __init__(self, evaluator: Evaluator, partition: int) -> None:
        self.evaluator = evaluator
        self.partition = partition
        self.stop = asyncio.Event()
        self.engine = Engine(evaluator.policies, evaluator.clock)
        self.loaded = asyncio.Event()
        # Serialises use of the engine between the batch and the deadline task.
        self.lock = asyncio.Lock()
        self._deadlines_moved = asyncio.Event()
        # Accounts whose facts in memory may be ahead of the database (a batch touching them
        # has not committed): read again before the engine next works on them.
        self._unsure: set[str] = set()
        self._accounts_checked = 0.0
        self._loaded_at = datetime.now(UTC)

    @property
    def db(self) -> Database:
        return self.evaluator.db

    async def run(self) -> None:
        await self.load()
        spec = partition_spec(self.partition, self.evaluator.settings.evaluator_batch)
        await asyncio.gather(
            consume_ordered(self.evaluator.bus, spec, self.handle, self.stop, tick=self.tick,
                            may_fetch=self._may_fetch),
            self._watch_deadlines(),
        )

    async def load(self) -> None:
        started = time.perf_counter()
        self._loaded_at = datetime.now(UTC)
        # Slot first, then lock (as everywhere), and the swap happens under the lock.
        await self.evaluator.db_run(self._load, lock=self.lock)
        self._accounts_checked = time.monotonic()
        REBUILD_SECONDS.observe(time.perf_counter() - started)
        self.loaded.set()

    def _load(self, session: Session) -> None:
        engine = Engine(self.evaluator.policies, self.evaluator.clock)
        engine.load(store.load_jobs(session, {self.partition}),
                    store.load_accounts(session, {self.partition}))
        self.engine, self._unsure = engine, set()

    # --- events ----------------------------------------------------------------------------

    async def handle(self, events: list[Event]) -> None:
        """Apply ``events`` in one transaction. A failure leaves the accounts they touched to
        be read again by the next transaction: a poison message costs a reload of one
        account, not of the partition, before the bus retries or dead-letters it."""
        # Even when told to stop, the batch in hand is finished while the lease fence (in
        # ``_apply``) still passes: left unacked, it would hold up the partition's next owner.
        touched = {event.tenant.account for event in events}
        try:
            changed = await self.evaluator.db_run(
                lambda session: self._apply(session, events, touched), lock=self.lock)
        except LeaseLost:
            self.stop.set()
            raise
        self._unsure -= touched  # committed: memory and database agree again
        self._deadlines_moved.set()
        self._committed(changed)

    def _committed(self, changed: list[AlertChanged]) -> None:
        if changed:
            alerts.log_transitions(changed)
            self.evaluator.relay.poke()

    def _apply(self, session: Session, events: list[Event],
               touched: set[str]) -> list[AlertChanged]:
        self.evaluator.leases.check(session, self.partition)
        self._reload_unsure(session)
        self._unsure |= touched  # until the commit
        fresh = claim_events(session, CONSUMER, [e.event_id for e in events])
        self._ensure_accounts(session, events)
        transitions = []
        for event in events:
            if event.event_id in fresh:
                fresh.discard(event.event_id)  # the same event twice in one batch: once
                transitions.extend(self.engine.apply(event))
        return self._write(session, transitions)

    def _reload_unsure(self, session: Session) -> None:
        if not self._unsure:
            return
        unsure = self._unsure
        self.engine.replace(unsure, store.load_jobs(session, {self.partition}, unsure),
                            store.load_accounts(session, {self.partition}, only=unsure))
        self._unsure = set()

    def _ensure_accounts(self, session: Session, events: list[Event]) -> None:
        missing = {e.tenant.account for e in events} - self.engine.accounts.keys()
        if missing:
            for account in store.load_accounts(session, {self.partition}, only=missing):
                self.engine.add_account(account)

    def _write(self, session: Session, transitions: list[Transition]) -> list[AlertChanged]:
        jobs, accounts, rescheduled = self.engine.take_dirty()
        store.save_jobs(session, jobs, rescheduled)
        store.save_accounts(session, accounts)
        return store.record(session, transitions)

    def _may_fetch(self) -> bool:
        """A replica that has not renewed its leases lately (a stalled process waking up) may
        have lost the partition: taking messages then would hand them to nobody."""
        if self.evaluator.lease_fresh():
            return True
        self.stop.set()
        return False

    async def tick(self) -> None:
        """Between batches, in the consumer's task: new thresholds, new accounts."""
        if self.engine.policies is not self.evaluator.policies:
            async with self.lock:
                self.engine.set_policies(self.evaluator.policies)
            self._deadlines_moved.set()
        refresh = self.evaluator.settings.evaluator_refresh_seconds
        if time.monotonic() - self._accounts_checked > refresh:
            await self._pick_up_new_accounts()

    # --- time ------------------------------------------------------------------------------

    async def _watch_deadlines(self) -> None:
        """Sleep until the earliest deadline (or until events move deadlines), then evaluate.

        A task of its own, so a deadline does not wait for the partition's next batch; its
        database work goes before queued batches, and the partition lock keeps it from
        touching the engine while a batch does.
        """
        while not self.stop.is_set():
            earliest = self.engine.next_deadline()
            delay = 1.0 if earliest is None else (
                earliest - self.evaluator.clock.now()).total_seconds()
            if delay > 0:
                self._deadlines_moved.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._deadlines_moved.wait(), timeout=min(delay, 1.0))
                continue
            await self._fire_due()

    async def _fire_due(self) -> None:
        try:
            changed = await self.evaluator.db_run(self._due, urgent=True, lock=self.lock)
        except LeaseLost:
            self.stop.set()
            return
        except Exception as exc:
            log.warning("partition %d: deadlines failed, reloading: %r", self.partition, exc)
            await asyncio.sleep(0.5)
            await self.load()
            return
        self._committed(changed)

    def _due(self, session: Session) -> list[AlertChanged]:
        self.evaluator.leases.check(session, self.partition)
        self._reload_unsure(session)
        return self._write(session, self.engine.due())

    async def _pick_up_new_accounts(self) -> None:
        """Accounts created since the load have no event yet but may become never-used."""
        self._accounts_checked = time.monotonic()
        known = set(self.engine.accounts)
        # Creation times come from other processes' clocks: look back generously.
        since = self._loaded_at - timedelta(minutes=10)
        found = await self.evaluator.db_run(
            lambda s: store.load_accounts(s, {self.partition}, known=known, created_after=since))
        async with self.lock:
            for account in found:
                self.engine.add_account(account)
        self._deadlines_moved.set()


class Evaluator:
    def __init__(
        self, db: Database, bus: Bus, settings: EvaluatorSettings | None = None, *,
        clock: Clock | None = None, replica_id: str | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings or EvaluatorSettings()
        self.clock = clock or SystemClock()
        self.replica_id = replica_id or self.settings.evaluator_replica_id or default_replica_id()
        self.leases = Leases(self.replica_id, EVALUATOR_PARTITIONS,
                             timedelta(seconds=self.settings.evaluator_lease_seconds))
        self.relay = OutboxRelay(db, bus)
        self.policies = PolicyBook()
        # Thresholds from the accounts' LDAP entries, synced on the refresh interval.
        self.directory = DirectoryThresholds(self.settings) if configured(self.settings) else None
        self.workers: dict[int, tuple[PartitionWorker, asyncio.Task[None]]] = {}
        self._pruned = 0.0
        self._db_slots = PrioritySlots(1 if db.engine.dialect.name == "sqlite" else 4)
        db.favour_writes()
        self._lease_checked = time.monotonic()
        self._rebalanced = False

    async def run(self, stop: asyncio.Event) -> None:
        if self.directory is None:
            await asyncio.gather(self.relay.run(stop), self._manage(stop))
            return
        # Partitions start with the directory's thresholds when it answers (else without them,
        # until it does: the sync keeps trying on the refresh interval).
        await self._try_sync_directory()
        try:
            await asyncio.gather(self.relay.run(stop), self._manage(stop),
                                 self._sync_directory(stop))
        finally:
            self.directory.close()

    async def sync_directory(self) -> bool:
        """Read the directory's thresholds once (one paged search for every account entry)
        and put them in force; False when the directory could not answer (the last values
        read stay in force)."""
        directory = self.directory
        assert directory is not None
        found = await asyncio.to_thread(directory.read)
        if found is None:
            return False
        wanted = directory.wanted(found)
        if not found:
            paths = []
        elif wanted is None:
            paths = await self.db.run(all_paths)
        elif wanted[0] == "account":
            paths = await self.db.run(lambda s: all_paths(s, names=wanted[1]))
        else:
            paths = await self.db.run(lambda s: all_paths(s, ids=wanted[1]))
        directory.apply(found, paths)
        self.policies = dataclasses.replace(self.policies, directory=directory.values)
        return True

    async def _sync_directory(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await pause(stop, self.settings.evaluator_refresh_seconds)
            if not stop.is_set():
                await self._try_sync_directory()

    async def _try_sync_directory(self) -> None:
        try:
            await self.sync_directory()
        except Exception as exc:  # the database away: the next round tries again
            log.warning("evaluator %s: directory sync failed: %r", self.replica_id, exc)

    async def _manage(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.rebalance()
                    await self._prune()
                except Exception as exc:  # database away: keep what we have until leases lapse
                    log.warning("evaluator %s: rebalance failed: %r", self.replica_id, exc)
                    await self._drop_expired()
                interval = min(self.settings.evaluator_lease_seconds / 3,
                               self.settings.evaluator_refresh_seconds)
                await pause(stop, interval)
        finally:
            await self._stop_workers(set(self.workers))
            with contextlib.suppress(Exception):
                await self._lease_run(self.leases.leave)

    async def rebalance(self) -> set[int]:
        """Renew leases, stop surplus or lost partitions, start newly held ones."""
        book = await self._lease_run(store.load_policies)
        if self.directory is not None:
            book.directory = self.directory.values
        self.policies = book
        held = await self._lease_run(self.leases.renew)
        self._lease_checked = time.monotonic()
        surplus = await self._lease_run(lambda s: self.leases.surplus(s, held))
        gone = (set(self.workers) - held) | surplus
        await self._stop_workers(gone)
        if surplus:
            await self._lease_run(lambda s: self.leases.release(s, surplus))
        for partition in sorted(held - surplus):
            running = self.workers.get(partition)
            if running is None or running[1].done():
                self._start(partition)
        self._rebalanced = True
        PARTITIONS_HELD.set(len(self.workers))
        DEADLINES.set(sum(len(w.engine.deadlines) for w, _ in self.workers.values()))
        return held - surplus

    async def _lease_run(self, work: Callable[[Session], T]) -> T:
        return await self.db.run(work, LEASE_LANE)

    async def db_run(
        self, work: Callable[[Session], T], *, urgent: bool = False,
        lock: asyncio.Lock | None = None,
    ) -> T:
        """Workers' database work; on SQLite one at a time, as the file allows one writer.
        ``urgent`` work (deadlines) goes before queued event batches; ``lock`` is taken once
        a slot is ours, so nobody holds it while queueing."""
        async with self._db_slots.slot(urgent=urgent):
            if lock is None:
                return await self.db.run(work)
            async with lock:
                return await self.db.run(work)

    def _start(self, partition: int) -> None:
        worker = PartitionWorker(self, partition)
        task = asyncio.create_task(self._supervise(worker), name=f"evaluator-p{partition}")
        self.workers[partition] = (worker, task)

    async def _supervise(self, worker: PartitionWorker) -> None:
        try:
            await worker.run()
        except Exception:
            # Restarted by the next rebalance while the lease is still ours.
            log.exception("evaluator partition %d crashed", worker.partition)

    async def _stop_workers(self, partitions: set[int]) -> None:
        stopping = [self.workers.pop(p) for p in partitions if p in self.workers]
        for worker, _ in stopping:
            worker.stop.set()
        await asyncio.gather(*(task for _, task in stopping), return_exceptions=True)

    def lease_fresh(self) -> bool:
        """Renewed within two thirds of a lease: no other replica can have our partitions."""
        return time.monotonic() - self._lease_checked <= (
            self.settings.evaluator_lease_seconds * 2 / 3)

    async def _drop_expired(self) -> None:
        if not self.lease_fresh():
            await self._stop_workers(set(self.workers))

    def ready(self) -> bool:
        """Leases settled once and every held partition loaded (its consumer starts next)."""
        return self._rebalanced and all(w.loaded.is_set() for w, _ in self.workers.values())

    async def wait_loaded(self) -> None:
        """For tests and the benchmark: every held partition has rebuilt its index."""
        await asyncio.gather(*(w.loaded.wait() for w, _ in self.workers.values()))

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned < 3600:
            return
        self._pruned = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(
            hours=self.settings.evaluator_processed_retention_hours)
        await self.db.run(lambda s: forget_before(s, CONSUMER, cutoff))


def build(settings: EvaluatorSettings, runtime: Runtime) -> Evaluator:
    evaluator = Evaluator(runtime.db, runtime.bus, settings)
    runtime.checks["evaluator"] = evaluator.ready
    return evaluator


async def run(settings: EvaluatorSettings, runtime: Runtime) -> None:
    await build(settings, runtime).run(runtime.stop)
