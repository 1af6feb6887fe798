"""The planning stage: an accepted transition becomes suppressed, postponed, or one pending
notification per receiver — those due at once leased straight to this replica's dispatcher.

One read (the policy's facts, the account's path and configured receivers), the directory asked
outside any transaction, one commit. The stage returns what happened; the service reacts to it
(metrics, log lines, back-pressure, starting the deliveries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from services.notifier.errors import DirectoryUnavailable
from services.notifier.lane import LANE
from services.notifier.policy.suppression import Facts, suppression
from services.notifier.queue import planning
from services.notifier.queue.dispatch import Unit
from services.notifier.recipients.receivers import (
    Configured,
    Directory,
    configured,
    receivers_of,
    resolve,
)
from services.notifier.tables import Notification, NotifyTransition
from shared.backoff import Backoff
from shared.clock import Clock
from shared.db import Database
from shared.events import AlertChanged
from shared.tenancy import AccountNotFound, AccountPath, AccountPaths
from shared.ttlcache import TtlCache

# Directory down: retry planning soon, then every few minutes, for as long as it takes.
PLAN_RETRY = Backoff.of(1, 5, 15, 30, 60, 120, 300)
WAIT_FOR_EARLIER = 1.0  # seconds: an earlier transition of the alert is planned first


@dataclass(frozen=True)
class Suppressed:
    reason: str
    recorded: bool  # False: another replica planned the transition first


@dataclass(frozen=True)
class Postponed:
    """An earlier transition of the alert still waits: this one waits behind it."""


@dataclass(frozen=True)
class DirectoryDown:
    """The receivers that need no directory are planned (``units``, ``left`` as in
    :class:`Planned`); the directory's part waits for the next try."""

    error: str
    delay: float  # seconds until the planner tries again
    units: list[Unit] = field(default_factory=list)
    left: int = 0


@dataclass(frozen=True)
class Planned:
    units: list[Unit]  # leased to this replica: deliver now
    left: int  # rows left to the dispatchers' claims (grouped, or no free slot)


PlanOutcome = Suppressed | Postponed | DirectoryDown | Planned


class Handover(Protocol):
    """The dispatcher as the planner sees it: rows due at once go to it without a claim."""

    def free_slots(self) -> int: ...

    def lease(self) -> tuple[str, datetime]: ...

    def units_for(self, session: Session, rows: list[Notification]) -> list[Unit]: ...


@dataclass(frozen=True)
class _Inputs:
    path: AccountPath
    config: Configured
    facts: Facts
    earlier_waiting: bool


class Planner:
    def __init__(self, db: Database, directory: Directory, handover: Handover, clock: Clock,
                 paths: AccountPaths, *, group_window: float, config_ttl: float) -> None:
        self._db = db
        self._directory = directory
        self._handover = handover
        self._clock = clock
        self._paths = paths
        self._group_window = group_window
        self._configured: TtlCache[str, Configured] = TtlCache(config_ttl)

    async def plan(self, t: NotifyTransition) -> PlanOutcome:
        alert = AlertChanged.model_validate(t.alert)
        now = self._clock.now()
        try:
            inputs = await self._db.run(lambda s: self._read(s, t, now), LANE)
        except AccountNotFound:
            return await self._suppress(t, "unknown_account", now)
        if inputs.earlier_waiting:
            await self._postpone(t, "waits for an earlier transition", WAIT_FOR_EARLIER, now)
            return Postponed()
        reason = suppression(alert, t.transition, inputs.facts)
        if reason is not None:
            return await self._suppress(t, reason, now)
        try:
            receivers = await resolve(self._directory, inputs.path, inputs.config)
        except DirectoryUnavailable as exc:
            return await self._plan_part(t, inputs.config, str(exc), now)
        options = self._options()

        def commit(session: Session) -> Planned:
            rows = planning.commit_plan(session, t, receivers, now, options)
            units, left = self._hand_over(session, rows, options)
            return Planned(units, left)

        return await self._db.run(commit, LANE)

    async def _plan_part(self, t: NotifyTransition, config: Configured, error: str,
                         now: datetime) -> DirectoryDown:
        """Tell the receivers that need no directory now; the rest waits for a retry."""
        delay = PLAN_RETRY.delay(t.plan_attempts + 1)
        receivers, options = receivers_of(config), self._options()

        def commit(session: Session) -> DirectoryDown:
            rows = planning.commit_part(session, t, receivers, now, options, error, delay)
            units, left = self._hand_over(session, rows, options)
            return DirectoryDown(error, delay, units, left)

        return await self._db.run(commit, LANE)

    def _options(self) -> planning.PlanOptions:
        handover = self._handover
        lease = handover.lease() if handover.free_slots() > 0 else None
        return planning.PlanOptions(self._group_window, lease)

    def _hand_over(self, session: Session, rows: list[Notification],
                   options: planning.PlanOptions) -> tuple[list[Unit], int]:
        lease = options.lease
        adopted = [r for r in rows if lease and r.lease_owner == lease[0]]
        return self._handover.units_for(session, adopted), len(rows) - len(adopted)

    def _read(self, session: Session, t: NotifyTransition, now: datetime) -> _Inputs:
        """Everything planning reads, in one round trip; the account's path and configured
        receivers through short-lived caches."""
        path = self._paths.get(session, t.account_id)
        config = self._configured.get(t.account_id, lambda: configured(session, path))
        return _Inputs(path, config, planning.facts(session, t, now),
                       planning.earlier_unplanned(session, t))

    async def _suppress(self, t: NotifyTransition, reason: str, now: datetime) -> Suppressed:
        recorded = await self._db.run(
            lambda s: planning.commit_suppressed(s, t, reason, now), LANE)
        return Suppressed(reason, recorded)

    async def _postpone(self, t: NotifyTransition, error: str, delay: float,
                        now: datetime) -> None:
        await self._db.run(lambda s: planning.postpone(s, t.id, error, delay, now), LANE)
