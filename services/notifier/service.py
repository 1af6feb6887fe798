"""The notifier's pipeline: consume alert events → accept → plan (policy, recipients) →
dispatch. Reminders re-enter as transitions. Every step is durable, so a restart resumes."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from services.notifier import planning, reminders
from services.notifier.backoff import Schedule
from services.notifier.delivery_log import log_suppressed
from services.notifier.directory_db import DatabaseDirectory
from services.notifier.dispatch import Dispatcher, DispatchOptions, Unit
from services.notifier.emails import Brand
from services.notifier.errors import DirectoryUnavailable
from services.notifier.mail import mailer_for
from services.notifier.metrics import PLAN_RETRIES, SUPPRESSED
from services.notifier.policy import Facts, suppression
from services.notifier.recipients import (
    AccountRef,
    Configured,
    Directory,
    account_ref,
    configured,
    resolve,
)
from services.notifier.store import Store
from services.notifier.tables import NotifyTransition
from services.notifier.targets import TargetPolicy
from services.notifier.webhooks import WebhookSender
from shared.config import NotifierSettings
from shared.consumers import consume
from shared.db import Database, utcnow
from shared.events import AlertChanged, Event
from shared.runtime import Runtime
from shared.secretbox import secret_box
from shared.streams import ALERTS, ConsumerSpec
from shared.tenancy import AccountNotFound
from shared.ttlcache import TtlCache
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

CONSUMER = "notifier"

SPEC = ConsumerSpec(
    stream=ALERTS.name, durable=CONSUMER, filter_subjects=[AlertChanged.subject_filter()]
)

# Directory down: retry planning soon, then every few minutes, for as long as it takes.
PLAN_RETRY_DELAYS = [1, 5, 15, 30, 60, 120, 300]
PLAN_CONCURRENCY = 16
# A transition planned inline by the bus handler is left to the planner loop only this late.
INLINE_GRACE = 5.0
# After the directory failed, the handler leaves planning to the loop this long.
INLINE_PAUSE = 30.0
# More transitions than this being planned in the background: leave the rest to the loop.
MAX_INLINE = 500


@dataclass
class PolicyOptions:
    repeat_default: float = 4 * 3600.0
    group_window: float = 0.0
    inline: bool = True  # plan in the bus handler (lowest latency); False: planner loop only
    config_ttl: float = 5.0  # accounts' paths and configured receivers are re-read this often


class Notifier:
    def __init__(self, db: Database, directory: Directory, dispatcher: Dispatcher,
                 options: PolicyOptions | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        # The dispatcher's store: on SQLite one thread serves both (see store.py).
        self.db = dispatcher.store if dispatcher.store.db is db else Store(db)
        self.directory = directory
        self.dispatcher = dispatcher
        self.options = options or PolicyOptions()
        self.clock = clock
        self._wakeup = Wakeup()
        self._inline_paused_until = 0.0
        self._planning: set[asyncio.Task[None]] = set()
        self._last_of: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(PLAN_CONCURRENCY)
        self._receivers: TtlCache[str, tuple[AccountRef, Configured]] = TtlCache(
            self.options.config_ttl)

    async def handle(self, event: Event) -> None:
        """Bus handler: store the transition (the ack follows) and start planning it at once;
        the planner loop takes over whatever this does not finish (crash, directory down)."""
        if not isinstance(event, AlertChanged):
            return
        now, repeat = self.clock(), self.options.repeat_default
        inline = (self.options.inline and time.monotonic() >= self._inline_paused_until
                  and len(self._planning) < MAX_INLINE)
        plan_after = now + timedelta(seconds=INLINE_GRACE if inline else 0)
        t = await self.db.run(lambda s: planning.accept(s, event, now, repeat, plan_after))
        if t is None:
            return
        if not inline:
            self._wakeup.poke()
            return
        # In the background, so the consumer takes the next event meanwhile; one alert's
        # transitions are chained so that a resolve is planned after its firing.
        previous = self._last_of.get(t.fingerprint)
        task = asyncio.create_task(self._plan_after(t, previous))
        self._last_of[t.fingerprint] = task
        self._planning.add(task)
        task.add_done_callback(lambda done: self._planned(t.fingerprint, done))

    async def _plan_after(self, t: NotifyTransition, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        async with self._slots:
            try:
                await self._plan(t)
            except Exception:  # accepted and committed: the planner loop retries later
                log.exception("planning %s failed; the planner will retry", t.key)

    def _planned(self, fingerprint: str, task: asyncio.Task[None]) -> None:
        self._planning.discard(task)
        if self._last_of.get(fingerprint) is task:
            del self._last_of[fingerprint]

    async def drain(self) -> None:
        """Wait until inline planning and the deliveries it started are done."""
        while self._planning:
            await asyncio.gather(*self._planning, return_exceptions=True)
        await self.dispatcher.drain()

    async def plan_due(self) -> int:
        """Plan every accepted transition that is due; returns how many were looked at."""
        now = self.clock()
        due = await self.db.run(lambda s: planning.due(s, now))
        slots = asyncio.Semaphore(PLAN_CONCURRENCY)

        by_alert: dict[str, list[NotifyTransition]] = {}
        for t in due:
            by_alert.setdefault(t.fingerprint, []).append(t)

        async def plan(transitions: list[NotifyTransition]) -> None:
            # One alert's transitions in order (a resolve looks at how its firing went);
            # different alerts side by side.
            async with slots:
                for t in transitions:
                    if await self._plan(t):
                        self.dispatcher.poke()  # at once: the next one need not wait

        await asyncio.gather(*(plan(ts) for ts in by_alert.values()))
        return len(due)

    async def _plan(self, t: NotifyTransition) -> int:
        alert = AlertChanged.model_validate(t.alert)
        now = self.clock()
        try:
            facts, ref, config, wait = await self.db.run(lambda s: self._inputs(s, t, now))
        except AccountNotFound:
            if await self.db.run(lambda s: planning.commit_suppressed(s, t, "unknown_account",
                                                                      now)):
                SUPPRESSED.labels("unknown_account").inc()
                log_suppressed(t, "unknown_account")
            return 0
        if wait:
            await self.db.run(lambda s: planning.postpone(s, t.id, "waits for an earlier "
                                                          "transition", 1.0, now))
            return 0
        reason = suppression(alert, t.transition, facts)
        if reason is not None:
            if await self.db.run(lambda s: planning.commit_suppressed(s, t, reason, now)):
                SUPPRESSED.labels(reason).inc()
                log_suppressed(t, reason)
            return 0
        try:
            receivers = await resolve(self.directory, ref, config)
        except DirectoryUnavailable as exc:
            delay = PLAN_RETRY_DELAYS[min(t.plan_attempts, len(PLAN_RETRY_DELAYS) - 1)]
            log.warning("directory unavailable, planning %s again in %ss: %s", t.key, delay, exc)
            PLAN_RETRIES.inc()
            # Leave planning to the loop for a while: the bus consumer must not wait on timeouts.
            self._inline_paused_until = time.monotonic() + INLINE_PAUSE
            error = str(exc)
            await self.db.run(lambda s: planning.postpone(s, t.id, error, delay, now))
            return 0
        lease = self.dispatcher.lease() if self.dispatcher.free_slots() > 0 else None
        options = planning.PlanOptions(self.options.group_window, lease)

        def commit(session: Session) -> tuple[int, list[Unit]]:
            rows = planning.commit_plan(session, t, receivers, now, options)
            adopted = [r for r in rows if lease and r.lease_owner == lease[0]]
            return len(rows) - len(adopted), self.dispatcher.units_for(session, adopted)

        left, units = await self.db.run(commit)
        self.dispatcher.start(units)  # delivered now, without waiting for a claim
        return left

    def _inputs(self, session: Session, t: NotifyTransition,
                now: datetime) -> tuple[Facts, AccountRef, Configured, bool]:
        """Everything planning reads from the database, in one round trip; the account's
        path and configured receivers from a short-lived cache."""
        ref, config = self._receivers.get(t.account_id, lambda: _receivers(session, t))
        return (planning.facts(session, t, now), ref, config,
                planning.earlier_unplanned(session, t))

    async def enqueue_reminders(self) -> int:
        now, default = self.clock(), self.options.repeat_default
        added = await self.db.run(lambda s: reminders.enqueue_due(s, now, default))
        if added:
            self._wakeup.poke()
        return added

    async def run_planner(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        try:
            await self._planner_loop(stop, interval)
        finally:
            await asyncio.gather(*self._planning, return_exceptions=True)

    async def _planner_loop(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.enqueue_reminders()
                while await self.plan_due() and not stop.is_set():
                    pass
            except Exception:  # e.g. the database away for a moment: try again next pass
                log.exception("planning pass failed")
            await self._wakeup.wait(stop, interval)


def _receivers(session: Session, t: NotifyTransition) -> tuple[AccountRef, Configured]:
    ref = account_ref(session, t.account_id)
    return ref, configured(session, ref)


def directory_for(settings: NotifierSettings, db: Database | Store) -> Directory:
    if settings.ldap_url:
        from services.notifier.directory_ldap import LdapDirectory

        return LdapDirectory(settings)
    return DatabaseDirectory(db)


def build(settings: NotifierSettings, db: Database) -> tuple[Notifier, WebhookSender]:
    # Both read at start: a missing key or a bad allow-list stops the notifier right away.
    webhooks = WebhookSender(settings.webhook_timeout, keys=secret_box(settings),
                             policy=TargetPolicy.parse(settings.webhook_allow_networks))
    options = DispatchOptions(
        public_url=settings.public_url,
        default_brand=Brand(sender=settings.mail_from),
        schedule=Schedule(base=settings.retry_base_seconds, cap=settings.retry_max_seconds,
                          give_up_after=settings.give_up_after_seconds),
        lease_seconds=settings.lease_seconds,
        concurrency=settings.delivery_concurrency,
        replica_id=settings.notifier_replica_id or socket.gethostname(),
    )
    store = Store(db)
    dispatcher = Dispatcher(store, mailer_for(settings), webhooks, options)
    policy = PolicyOptions(settings.repeat_interval_seconds, settings.group_window_seconds)
    return Notifier(db, directory_for(settings, store), dispatcher, policy), webhooks


async def run(settings: NotifierSettings, runtime: Runtime) -> None:
    notifier, webhooks = build(settings, runtime.db)
    try:
        await asyncio.gather(
            consume(runtime.bus, SPEC, notifier.handle, runtime.stop),
            notifier.run_planner(runtime.stop),
            notifier.dispatcher.run(runtime.stop),
        )
    finally:
        await webhooks.close()
        notifier.db.close()
