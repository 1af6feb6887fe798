"""Dispatch: deliver due notifications through their channel, record every attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlmodel import Session

from services.notifier.channels.emails import Brand, Item, build, reseller_brand
from services.notifier.channels.formats import Context
from services.notifier.channels.mail import Mailer
from services.notifier.channels.webhooks import WebhookSender
from services.notifier.errors import DeliveryError, Outcome, UnbuildableMessage, outcome_of
from services.notifier.lane import LANE
from services.notifier.metrics import DEAD, FAILED, LATENCY, QUEUE_DEPTH, SENT
from services.notifier.queue import delivery
from services.notifier.queue.backoff import Schedule
from services.notifier.queue.delivery_log import log_delivery
from services.notifier.tables import BrandRow, Notification, WebhookEndpoint
from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.events import AlertChanged
from shared.tenancy import AccountNotFound, AccountPath, AccountPaths
from shared.ttlcache import TtlCache
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)


@dataclass
class DispatchOptions:
    """From the settings (``service.dispatch_options``), which own the defaults."""

    public_url: str
    default_brand: Brand
    schedule: Schedule
    lease_seconds: float
    concurrency: int
    # Stable across restarts (BACKSTOP_NOTIFIER_REPLICA_ID); empty: leases are never reclaimed.
    replica_id: str
    batch: int = 100
    config_ttl: float = 5.0  # brands and endpoints are re-read this often


@dataclass
class Unit:
    """Rows delivered as one message, with everything needed to build it."""

    rows: list[Notification]
    tenant: AccountPath | None = None  # None: the account is gone
    brand: Brand | None = None
    endpoint: WebhookEndpoint | None = None


_Pending = tuple[Unit, Outcome, float, "asyncio.Future[None]"]


class Dispatcher:
    def __init__(self, db: Database, mailer: Mailer, webhooks: WebhookSender,
                 options: DispatchOptions, *, paths: AccountPaths | None = None,
                 clock: Clock | None = None) -> None:
        self._db = db
        self._mailer = mailer
        self.webhooks = webhooks
        self.options = options
        self._clock = clock or SystemClock()
        self._wakeup = Wakeup()
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outcomes: list[_Pending] = []
        self._recorder: asyncio.Task[None] | None = None
        self.replica = delivery.Replica(self.options.replica_id)
        self._owner = self.replica.owner()  # the lease owner of rows the planner hands over
        ttl = self.options.config_ttl
        self._paths = paths or AccountPaths(ttl)
        self._brands: TtlCache[str, Brand] = TtlCache(ttl)
        self._endpoints: TtlCache[str, WebhookEndpoint | None] = TtlCache(ttl)

    def poke(self) -> None:
        self._wakeup.poke()

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Keep up to ``concurrency`` deliveries in flight; claim more as soon as one ends, so
        a slow receiver or SMTP server never holds back the rest of a batch."""
        await self._reclaim()
        next_depth = 0.0
        while not stop.is_set():
            free = self.free_slots()
            units: list[Unit] = []
            try:
                if free > 0:
                    units = await self._db.run(partial(self._claim_units, limit=free), LANE)
                if time.monotonic() >= next_depth:
                    await self._update_depth()
                    next_depth = time.monotonic() + 5
            except Exception:  # the database away for a moment must not end the loop
                log.exception("dispatch pass failed")
            self.start(units)
            if units and self.free_slots() > 0:
                continue  # there may be more due right now
            await self._wakeup.wait(stop, interval)
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _reclaim(self) -> None:
        try:
            count = await self._db.run(partial(delivery.reclaim, replica=self.replica), LANE)
        except Exception:  # the leases expire anyway
            log.exception("reclaiming deliveries of an earlier run failed")
            return
        if count:
            log.warning("replica %s: %d deliveries its earlier run left unfinished are due "
                        "again", self.options.replica_id, count)

    def free_slots(self) -> int:
        return self.options.concurrency - len(self._in_flight)

    def lease(self) -> tuple[str, datetime]:
        """A lease for rows the planner hands over directly (see :meth:`adopt`)."""
        return self._owner, self._clock.now() + timedelta(seconds=self.options.lease_seconds)

    def units_for(self, session: Session, rows: list[Notification]) -> list[Unit]:
        """Units for rows the planner just leased to this replica (see :meth:`lease`)."""
        return self._units(session, [[r] for r in rows])

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests, shutdown)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def start(self, units: list[Unit]) -> None:
        for unit in units:
            task = asyncio.create_task(self._deliver(unit))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery crashed: %r", task.exception())
        self._wakeup.poke()  # a slot is free

    async def _update_depth(self) -> None:
        for status, count in (await self._db.run(delivery.depth, LANE)).items():
            QUEUE_DEPTH.labels(status).set(count)

    async def deliver_due(self) -> int:
        """Deliver one batch of due notifications and wait for it; returns rows tried."""
        now, batch = self._clock.now(), self.options.batch
        units = await self._db.run(lambda s: self._load(s, now, batch), LANE)
        await asyncio.gather(*(self._deliver(u) for u in units))
        return sum(len(u.rows) for u in units)

    def _claim_units(self, session: Session, limit: int) -> list[Unit]:
        return self._load(session, self._clock.now(), limit)

    def _load(self, session: Session, now: datetime, limit: int) -> list[Unit]:
        return self._units(session, delivery.claim(session, now, self.options.lease_seconds,
                                                   limit, self.replica.owner()))

    def _units(self, session: Session, claimed: list[list[Notification]]) -> list[Unit]:
        units = []
        for rows in claimed:
            unit = Unit(rows)
            first = rows[0]
            try:
                unit.tenant = self._paths.get(session, first.account_id)
            except AccountNotFound:
                units.append(unit)  # delivered as a permanent failure below
                continue
            if first.channel == "email":
                reseller = unit.tenant.reseller_id
                unit.brand = self._brands.get(reseller, partial(self._load_brand, session,
                                                                reseller))
            else:
                unit.endpoint = self._endpoints.get(
                    first.target, partial(session.get, WebhookEndpoint, first.target))
            units.append(unit)
        return units

    def _load_brand(self, session: Session, reseller_id: str) -> Brand:
        return reseller_brand(session.get(BrandRow, reseller_id), self.options.default_brand)

    def _link(self, alert: AlertChanged) -> str:
        return f"{self.options.public_url.rstrip('/')}/alerts/{alert.fingerprint}"

    async def _deliver(self, unit: Unit) -> None:
        async with self._slots:
            started = time.monotonic()
            try:
                outcome = Outcome("sent", http_status=await self._send(unit))
            except Exception as exc:
                outcome = outcome_of(exc)
            took = (time.monotonic() - started) * 1000
        await self._record(unit, outcome, took)

    async def _record(self, unit: Unit, outcome: Outcome, took: float) -> None:
        """Queue the outcome; outcomes arriving while one batch is written go in the next, so
        under load many deliveries share one transaction."""
        done = asyncio.get_running_loop().create_future()
        self._outcomes.append((unit, outcome, took, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._write_outcomes())
        await done

    async def _write_outcomes(self) -> None:
        schedule = self.options.schedule
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            now = self._clock.now()

            def write(session: Session, batch: list[_Pending] = batch,
                      now: datetime = now) -> list[list[delivery.Recorded]]:
                return [[delivery.record(session, r.id, o, now, schedule, took) for r in u.rows]
                        for u, o, took, _ in batch]

            try:
                recorded = await self._db.run(write, LANE)
            except Exception as exc:  # leases expire: the rows are delivered again later
                for *_, done in batch:
                    done.set_exception(exc)
                continue
            for (unit, outcome, took, done), unit_recorded in zip(batch, recorded, strict=True):
                for row, result in zip(unit.rows, unit_recorded, strict=True):
                    self._count(row, outcome, result.status, now)
                    log_delivery(row, outcome, result.status, result.attempts,
                                 result.next_attempt_at, took, unit.endpoint)
                done.set_result(None)

    async def _send(self, unit: Unit) -> int | None:
        """Send one unit; returns the HTTP status for webhooks, raises on failure."""
        first = unit.rows[0]
        if unit.tenant is None:
            raise DeliveryError("unknown_account", "the account no longer exists",
                                retryable=False)
        if first.channel == "email":
            assert unit.brand is not None
            await self._mailer.send(build(self._items(unit.rows, unit.tenant), first.target,
                                          unit.brand, first.key))
            return None
        endpoint = unit.endpoint
        if endpoint is None or not endpoint.enabled:
            raise DeliveryError("endpoint_removed", f"webhook {first.target} is gone",
                                retryable=False)
        alert = AlertChanged.model_validate(first.alert)
        context = Context(alert, first.transition, unit.tenant, self._link(alert), endpoint.id)
        return await self.webhooks.send(endpoint, context, first.key)

    def _items(self, rows: list[Notification], tenant: AccountPath) -> list[Item]:
        try:
            alerts = [AlertChanged.model_validate(r.alert) for r in rows]
        except ValueError as exc:  # a stored alert this version cannot read: nor can a retry
            raise UnbuildableMessage(f"cannot be built: {exc}") from exc
        return [Item(a, r.transition, tenant, self._link(a))
                for r, a in zip(rows, alerts, strict=True)]

    def _count(self, row: Notification, outcome: Outcome, status: str, now: datetime) -> None:
        if status == "sent":
            SENT.labels(row.channel).inc()
            if row.transition != "reminder":
                changed = AlertChanged.model_validate(row.alert).last_changed
                LATENCY.labels(row.channel).observe(max(0.0, (now - changed).total_seconds()))
            return
        FAILED.labels(row.channel, outcome.reason).inc()
        if status == "dead":
            DEAD.labels(row.channel, outcome.reason).inc()
