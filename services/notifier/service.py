"""The notifier's pipeline, assembled in :func:`pipeline` and read top to bottom:

consume alert events → accept (the transition stored; the bus ack follows) → plan
(:class:`~services.notifier.queue.planner.Planner`: policy, recipients) → dispatch
(:class:`~services.notifier.queue.dispatch.Dispatcher`: channels, retries). Reminders re-enter
as transitions. Every step is durable, so a restart resumes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from services.notifier.channels.emails import Brand
from services.notifier.channels.mail import Mailer, mailer_for
from services.notifier.channels.targets import TargetPolicy
from services.notifier.channels.webhooks import WebhookSender
from services.notifier.lane import LANE
from services.notifier.metrics import PLAN_RETRIES, SUPPRESSED
from services.notifier.plan_reports import SPEC as REPORT_SPEC
from services.notifier.plan_reports import PlanReports
from services.notifier.policy import reminders
from services.notifier.queue import planning
from services.notifier.queue.backoff import Schedule
from services.notifier.queue.delivery_log import log_suppressed
from services.notifier.queue.dispatch import Dispatcher, DispatchOptions
from services.notifier.queue.planner import DirectoryDown, Planned, Planner, Suppressed
from services.notifier.recipients.directory_db import DatabaseDirectory
from services.notifier.recipients.receivers import Directory
from services.notifier.tables import NotifyTransition
from shared.clock import Clock, SystemClock
from shared.config import NotifierSettings
from shared.consumers import consume
from shared.db import Database
from shared.events import AlertChanged, Event
from shared.runtime import Runtime
from shared.secretbox import secret_box
from shared.streams import ALERTS, ConsumerSpec
from shared.tenancy import AccountPaths
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

CONSUMER = "notifier"

SPEC = ConsumerSpec(
    stream=ALERTS.name, durable=CONSUMER, filter_subjects=[AlertChanged.subject_filter()]
)

PLAN_CONCURRENCY = 16
# A transition planned inline by the bus handler is left to the planner loop only this late.
INLINE_GRACE = 5.0
# After the directory failed, the handler leaves planning to the loop this long.
INLINE_PAUSE = 30.0
# More transitions than this being planned in the background: leave the rest to the loop.
MAX_INLINE = 500


@dataclass
class PolicyOptions:
    """From the settings (:func:`policy_options`), which own the defaults."""

    repeat_default: float
    group_window: float
    inline: bool = True  # plan in the bus handler (lowest latency); False: planner loop only
    config_ttl: float = 5.0  # accounts' paths and configured receivers are re-read this often


class Notifier:
    def __init__(self, db: Database, planner: Planner, dispatcher: Dispatcher,
                 options: PolicyOptions, clock: Clock) -> None:
        self.db = db
        self.planner = planner
        self.dispatcher = dispatcher
        self.options = options
        self.clock = clock
        self._wakeup = Wakeup()
        self._inline_paused_until = 0.0
        self._planning: set[asyncio.Task[None]] = set()
        self._last_of: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(PLAN_CONCURRENCY)

    async def handle(self, event: Event) -> None:
        """Bus handler: store the transition (the ack follows) and start planning it at once;
        the planner loop takes over whatever this does not finish (crash, directory down)."""
        if not isinstance(event, AlertChanged):
            return
        now, repeat = self.clock.now(), self.options.repeat_default
        inline = (self.options.inline and time.monotonic() >= self._inline_paused_until
                  and len(self._planning) < MAX_INLINE)
        plan_after = now + timedelta(seconds=INLINE_GRACE if inline else 0)
        t = await self.db.run(lambda s: planning.accept(s, event, now, repeat, plan_after), LANE)
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
        now = self.clock.now()
        due = await self.db.run(lambda s: planning.due(s, now), LANE)
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
        """Plan one transition and react to the outcome; returns rows left to a claim."""
        outcome = await self.planner.plan(t)
        if isinstance(outcome, Suppressed) and outcome.recorded:
            SUPPRESSED.labels(outcome.reason).inc()
            log_suppressed(t, outcome.reason)
        elif isinstance(outcome, DirectoryDown):
            log.warning("directory unavailable, planning %s again in %ss: %s", t.key,
                        outcome.delay, outcome.error)
            PLAN_RETRIES.inc()
            # Leave planning to the loop for a while: the bus consumer must not wait on timeouts.
            self._inline_paused_until = time.monotonic() + INLINE_PAUSE
            self.dispatcher.start(outcome.units)  # the part that needs no directory: now
            return outcome.left
        elif isinstance(outcome, Planned):
            self.dispatcher.start(outcome.units)  # delivered now, without waiting for a claim
            return outcome.left
        return 0

    async def enqueue_reminders(self) -> int:
        now, default = self.clock.now(), self.options.repeat_default
        added = await self.db.run(lambda s: reminders.enqueue_due(s, now, default), LANE)
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

    async def close(self) -> None:
        await self.dispatcher.webhooks.close()


def policy_options(settings: NotifierSettings) -> PolicyOptions:
    return PolicyOptions(settings.repeat_interval_seconds, settings.group_window_seconds)


def schedule_of(settings: NotifierSettings) -> Schedule:
    return Schedule(base=settings.retry_base_seconds, cap=settings.retry_max_seconds,
                    give_up_after=settings.give_up_after_seconds)


def dispatch_options(settings: NotifierSettings) -> DispatchOptions:
    return DispatchOptions(
        public_url=settings.public_url,
        default_brand=Brand(sender=settings.mail_from),
        schedule=schedule_of(settings),
        lease_seconds=settings.lease_seconds,
        concurrency=settings.delivery_concurrency,
        replica_id=settings.notifier_replica_id or socket.gethostname(),
    )


def directory_for(settings: NotifierSettings, db: Database) -> Directory:
    if settings.ldap_url:
        from services.notifier.recipients.directory_ldap import LdapDirectory

        return LdapDirectory(settings)
    return DatabaseDirectory(db)


def pipeline(db: Database, directory: Directory, mailer: Mailer, webhooks: WebhookSender,
             policy: PolicyOptions, dispatch: DispatchOptions,
             clock: Clock | None = None) -> Notifier:
    """The stages in order: the notifier accepts and hands to the planner, the planner
    to the dispatcher, the dispatcher to the channels. One tenant lookup serves them all."""
    clock = clock or SystemClock()
    paths = AccountPaths(policy.config_ttl)
    dispatcher = Dispatcher(db, mailer, webhooks, dispatch, paths=paths, clock=clock)
    planner = Planner(db, directory, dispatcher, clock, paths, group_window=policy.group_window,
                      config_ttl=policy.config_ttl)
    return Notifier(db, planner, dispatcher, policy, clock)


def build(settings: NotifierSettings, runtime: Runtime) -> Notifier:
    # Both read at start: a missing key or a bad allow-list stops the notifier right away.
    webhooks = WebhookSender(settings.webhook_timeout, keys=secret_box(settings),
                             policy=TargetPolicy.parse(settings.webhook_allow_networks))
    return pipeline(runtime.db, directory_for(settings, runtime.db), mailer_for(settings),
                    webhooks, policy_options(settings), dispatch_options(settings))


async def run(settings: NotifierSettings, runtime: Runtime) -> None:
    notifier = build(settings, runtime)
    reports = PlanReports(runtime.db, mailer_for(settings), Brand(sender=settings.mail_from))
    try:
        await asyncio.gather(
            consume(runtime.bus, SPEC, notifier.handle, runtime.stop),
            consume(runtime.bus, REPORT_SPEC, reports.handle, runtime.stop),
            notifier.run_planner(runtime.stop),
            notifier.dispatcher.run(runtime.stop),
        )
    finally:
        await notifier.close()
