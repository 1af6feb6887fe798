"""The executor service: replicas that take plan runs from JetStream and run them.

Read top to bottom in :meth:`Executor.run`: the replica makes itself known (presence), then runs
side by side

- the **scheduler** (:mod:`triggers`): every enabled plan's ticks, published as triggers;
- the **intake**: triggers taken from ``BACKSTOP_EXECUTOR`` while the replica has room
  (``BACKSTOP_EXECUTOR_MAX_PLANS``); each is recorded as a queued execution (durable before the
  ack), then run by the plan flow (:func:`flow.execute`) in the background;
- **recovery** (:mod:`recovery`): the quiesced targets and executions of replicas that died.

The flow reaches the world through its ports, which this module fills with the cross-replica
implementations: target leases (:mod:`exclusion`), the pause switch (:mod:`switch`), durable
unquiesce intents (:mod:`recovery`), run events and plan reports (:mod:`results`), and the
database history. Stopping cancels the running executions: each unquiesces what it quiesced and
ends ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.executor import api, catalog, history
from services.executor.exclusion import ReplicaTargetLocks, TargetLeases
from services.executor.executions import PlanExecution, PlanStatus, TaskExecution
from services.executor.flow import execute
from services.executor.plans.models import Plan
from services.executor.plugins.api import TaskContext
from services.executor.plugins.registry import Registry, load
from services.executor.ports import ExecutionContext, UnquiesceIntent
from services.executor.recovery import DurableIntents, Recovery, Replicas
from services.executor.results import PlanResults, Publisher, schedule_event
from services.executor.switch import Switch
from services.executor.tables import PlanExecutionRow, PlanRow
from services.executor.triggers import (
    ScheduledPlan,
    Scheduler,
    parse_labels,
    pin_label,
    take_triggers,
)
from shared.clock import Clock
from shared.config import ExecutorSettings
from shared.db import core_table
from shared.events import Event, PlanTriggered, RunReported, Tenant, utcnow
from shared.runtime import Runtime
from shared.scopes import Scope

log = logging.getLogger(__name__)

RUNNING = Gauge("backstop_executor_running_plans", "Plan executions this replica runs.")


def default_replica_id() -> str:
    """Unique per process: a restarted replica is a new one, and what the old one left behind
    is recovered like any dead replica's."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Run:
    """What a trigger needs from the database to start."""

    plan: Plan
    tenant: Tenant
    enabled: bool


def plan_run(session: Session, name: str) -> Run | None:
    row = session.get(PlanRow, name)
    if row is None:
        return None
    return Run(catalog.plan_of(row), Tenant(reseller=row.reseller_id, customer=row.customer_id,
                                            account=row.account_id), row.enabled)


def all_plans(session: Session) -> list[tuple[Plan, Tenant]]:
    """Every applied plan (``spec.enabled`` as set now) with its account's tenant."""
    rows = session.execute(select(PlanRow))
    return [(catalog.plan_of(row), Tenant(reseller=row.reseller_id, customer=row.customer_id,
                                         account=row.account_id)) for row in rows.scalars()]


def queue_once(session: Session, trigger: PlanTriggered, runner: str) -> bool:
    """Record the execution as queued; False when it exists (a trigger delivered again)."""
    if session.get(PlanExecutionRow, trigger.execution_id) is not None:
        return False
    history.queue(session, trigger.execution_id, trigger.plan, trigger.occurred_at, runner)
    return True


def orphans(session: Session, alive: set[str]) -> list[tuple[str, str]]:
    """(execution id, plan) of executions queued or running on a replica that is not alive."""
    table = core_table(PlanExecutionRow)
    rows = session.execute(select(table.c.id, table.c.plan, table.c.runner).where(
        table.c.status.in_([PlanStatus.QUEUED.value, PlanStatus.RUNNING.value])))
    return [(row.id, row.plan) for row in rows if row.runner not in alive]


class Executor:
    def __init__(self, settings: ExecutorSettings, runtime: Runtime, *,
                 plugins: Registry | None = None, replica_id: str | None = None,
                 clock: Clock | None = None) -> None:
        """``clock``: the scheduler's (tests move it to a tick); the flow keeps the system's."""
        self.settings = settings
        self.bus = runtime.bus
        self.db = runtime.db
        self.plugins = plugins if plugins is not None else load()
        self.replica_id = replica_id or default_replica_id()
        self.labels = parse_labels(settings.executor_labels)
        ttl = settings.executor_lease_seconds
        self.leases = TargetLeases(self.bus, self.replica_id, ttl=ttl)
        self.locks = ReplicaTargetLocks(self.leases)
        self.switch = Switch(self.bus)
        self.replicas = Replicas(self.bus, self.replica_id, self.labels, ttl=ttl)
        self.intents = DurableIntents(self.bus, self.replica_id)
        self.publisher = Publisher(self.bus)
        self.history = history.DatabaseHistory(self.db, settings.executor_history_executions)
        self.scheduler = Scheduler(self.bus, self._scheduled,
                                   refresh=settings.executor_refresh_seconds, clock=clock)
        self.recovery = Recovery(self.replicas, self.intents, self.leases, self._unquiesce,
                                 self._interrupt, interval=max(1.0, ttl / 3))
        self.running: dict[str, asyncio.Task[Any]] = {}
        self._room = asyncio.Event()
        self._room.set()
        self._stop = asyncio.Event()
        self._registered: dict[str, str] = {}  # plan → event id of the schedule last published
        self.started = asyncio.Event()

    # --- the loops ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await self.replicas.beat()  # known alive before any execution names this replica
        self.started.set()
        try:
            await asyncio.gather(
                self.replicas.run(stop),
                self.scheduler.run(stop),
                take_triggers(self.bus, self.labels, self.handle, stop, gate=self._has_room),
                self.recovery.run(stop),
            )
        finally:
            await self._cancel_running()
            await self.locks.close()

    async def _has_room(self) -> bool:
        while not self._stop.is_set():
            if len(self.running) < self.settings.executor_max_plans:
                return True
            self._room.clear()
            waiter = asyncio.ensure_future(self._room.wait())
            stopper = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        return False

    async def _cancel_running(self) -> None:
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- triggers ----------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Take a trigger: queue its execution (durably, so the ack loses nothing), start it."""
        if not isinstance(event, PlanTriggered):
            return
        run = await self.db.run(lambda s: plan_run(s, event.plan))
        if run is None:
            log.warning("trigger for unknown plan %s dropped", event.plan)
            return
        if not run.enabled and event.reason == "schedule":
            return  # disabled since the tick was published
        if pin_label(run.plan.spec.replicas) != event.label:
            log.warning("plan %s: trigger for another pin (%s), dropped", event.plan, event.label)
            return
        try:
            fresh = await self.db.run(lambda s: queue_once(s, event, self.replica_id))
        except IntegrityError:
            fresh = False
        if not fresh:
            return
        task = asyncio.create_task(self._execute(run, event), name=f"plan-{event.execution_id}")
        self.running[event.execution_id] = task
        RUNNING.set(len(self.running))
        self.replicas.running.add(event.execution_id)
        task.add_done_callback(lambda _: self._finished(event.execution_id))

    def _finished(self, execution_id: str) -> None:
        self.running.pop(execution_id, None)
        self.replicas.running.discard(execution_id)
        RUNNING.set(len(self.running))
        self._room.set()

    def context(self, run: Run) -> ExecutionContext:
        s = self.settings
        return ExecutionContext(
            plugins=self.plugins, locks=self.locks, sink=PlanResults(
                self.publisher, run.plan, run.tenant), switch=self.switch, intents=self.intents,
            history=DeferredTaskHistory(self.history), parallel=s.executor_parallel,
            script_timeout=s.executor_script_timeout, output_limit=s.executor_script_output_chars,
            runner=self.replica_id)

    async def _execute(self, run: Run, trigger: PlanTriggered) -> None:
        inventory = await self.db.run(catalog.inventory)
        try:
            execution = await execute(run.plan, inventory, self.context(run),
                                      execution_id=trigger.execution_id,
                                      queued_at=trigger.occurred_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("plan %s execution %s failed", run.plan.name, trigger.execution_id)
            return
        log.info("plan %s execution %s: %s", run.plan.name, execution.id, execution.status)

    # --- schedules ---------------------------------------------------------------------------

    async def _scheduled(self) -> list[ScheduledPlan]:
        """The enabled plans with a schedule. Every plan's schedule is registered as its
        job's when it changed: the evaluator expects the runs of an enabled, scheduled plan,
        and none of a disabled or unscheduled one (no missed-run alert for it)."""
        plans = await self.db.run(all_plans)
        out = []
        for plan, tenant in plans:
            scheduled = plan.spec.enabled and plan.spec.schedule is not None
            if scheduled:
                assert plan.spec.schedule is not None
                out.append(ScheduledPlan(plan.name, plan.spec.schedule.cron_schedule(), tenant,
                                         pin_label(plan.spec.replicas)))
            event = schedule_event(plan, tenant, expected=scheduled)
            if self._registered.get(plan.name) != event.event_id:
                if await self.publisher.publish(event):
                    self._registered[plan.name] = event.event_id
        return out

    # --- recovery ----------------------------------------------------------------------------

    async def _unquiesce(self, intent: UnquiesceIntent) -> None:
        plugin, _ = self.plugins.for_action(intent.action)
        context = TaskContext.model_validate(intent.options["context"])
        await plugin.unquiesce(context)

    async def _interrupt(self, alive: set[str]) -> int:
        found = await self.db.run(lambda s: orphans(s, alive))
        if not found:
            return 0
        ids = [execution_id for execution_id, _ in found]
        reason = "interrupted: its executor replica died"
        count = await self.db.run(lambda s: history.interrupt(s, execution_ids=ids,
                                                              reason=reason))
        for execution_id, plan_name in found:
            run = await self.db.run(partial(plan_run, name=plan_name))
            if run is not None:
                await self.publisher.publish(RunReported(
                    event_id=f"{execution_id}.finished", tenant=run.tenant, job=run.plan.job,
                    status="failure", run_id=execution_id, finished_at=utcnow(),
                    message=reason, client_name="backstop-executor"))
        return count

    def ready(self) -> bool:
        return self.started.is_set()


# How long the history's writer gathers task changes before it writes them, in one
# transaction: a plan of many short tasks costs a write per this interval, not one per change.
HISTORY_GATHER_SECONDS = 0.05


class DeferredTaskHistory:
    """The history recorder with task changes written behind the flow: a task's next step
    does not wait for the database. The changes of :data:`HISTORY_GATHER_SECONDS` (and those
    that arrive while a write runs) go together in one transaction, each task's coalesced (the
    write copies the task as it is then); the plan's end waits until they are all written, then
    is written."""

    def __init__(self, inner: history.DatabaseHistory) -> None:
        self.inner = inner
        self._waiting: dict[str, tuple[PlanExecution, TaskExecution]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._ending = asyncio.Event()  # the plan ends: write what is waiting at once

    async def started(self, execution: PlanExecution) -> None:
        await self.inner.started(execution)

    async def expanded(self, execution: PlanExecution) -> None:
        await self.inner.expanded(execution)

    async def task_changed(self, execution: PlanExecution, task: TaskExecution) -> None:
        self._waiting[task.id] = (execution, task)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._waiting:
            if not self._ending.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ending.wait(), HISTORY_GATHER_SECONDS)
            # Everything gathered meanwhile, in one transaction.
            batch = list(self._waiting.values())
            self._waiting.clear()
            try:
                await self.inner.tasks_changed(batch)
            except Exception:
                log.exception("history: tasks %s not written",
                              ", ".join(task.id for _, task in batch))

    async def finished(self, execution: PlanExecution) -> None:
        self._ending.set()
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        await self.inner.finished(execution)


def build(settings: ExecutorSettings, runtime: Runtime) -> Executor:
    executor = Executor(settings, runtime)
    runtime.checks["executor"] = executor.ready
    # The history's read API on the ops port, for operators: everything is in their scope.
    runtime.routers.append(api.router(runtime.db, lambda _: Scope.everything()))
    return executor


async def run(settings: ExecutorSettings, runtime: Runtime) -> None:
    await build(settings, runtime).run(runtime.stop)
