"""The plan flow (IBM DPOD's, generalised): one execution of one plan.

paused? → inside a maintenance window? → destination mounted? → enough space? → expand the
activities into tasks (probing targets, discovering items) → all skipped: stop → pre-plan
script (exit > 0 stops) → run the tasks → post-plan script.

Tasks start in the order they were created (activity order, then target, then item); never two
at once on one target (the context's :class:`~services.executor.ports.TargetLocks` hold a target
across plans and replicas); tasks on different targets run in parallel up to the plan's
``parallel`` (else the executor's). :func:`execute` is the entry point; everything it touches
outside the plan and the inventory comes through the :class:`ExecutionContext`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.executor.executions import (
    ActivityExecution,
    PlanExecution,
    PlanStatus,
    TaskExecution,
    TaskStatus,
)
from services.executor.plans.expansion import Found, expand, targets_of
from services.executor.plans.models import Inventory, Plan, Script
from services.executor.plans.windows import inside
from services.executor.plugins.api import Item, Plugin, PluginError, Target, items_for
from services.executor.ports import ExecutionContext
from services.executor.scripts import failure, run_script
from services.executor.space import check_mount, check_space
from services.executor.tasks import TaskRun, environment, plugin_target

log = logging.getLogger("backstop.executor")

# Probes and discoveries at once, per plan execution (they are short, mostly waiting on ssh).
DISCOVERY_PARALLEL = 16


def new_execution_id() -> str:
    return uuid.uuid4().hex[:16]


async def execute(plan: Plan, inventory: Inventory, context: ExecutionContext, *,
                  execution_id: str | None = None,
                  queued_at: datetime | None = None) -> PlanExecution:
    """Run ``plan`` once over ``inventory``; returns the execution with its final status.

    Cancelling the awaiting task interrupts the execution: running tasks are cancelled (each
    unquiesces what it quiesced), the execution ends ``interrupted`` in the history, and the
    cancellation propagates."""
    now = context.clock.now()
    execution = PlanExecution(id=execution_id or new_execution_id(), plan=plan.name,
                              queued_at=queued_at or now, runner=context.runner)
    await PlanRun(plan, inventory, context, execution).run()
    return execution


class PlanStopped(Exception):
    """A check stopped the plan before any task ran; the message says which."""

    def __init__(self, reason: str, status: PlanStatus = PlanStatus.STOPPED) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class PlanRun:
    plan: Plan
    inventory: Inventory
    context: ExecutionContext
    execution: PlanExecution
    items: dict[tuple[int, str, str], Item] = field(default_factory=dict)
    plugins: dict[int, Plugin] = field(default_factory=dict)

    async def run(self) -> None:
        execution, ctx = self.execution, self.context
        execution.started_at = ctx.clock.now()
        self._set(PlanStatus.RUNNING)
        await ctx.history.started(execution)
        await self._publish(ctx.sink.plan_started, execution)
        try:
            await self._flow()
        except PlanStopped as exc:
            execution.error = str(exc)
            self._skip_pending(str(exc))
            self._set(exc.status)
        except asyncio.CancelledError:
            execution.error = "interrupted: the executor stopped while the plan ran"
            self._set(PlanStatus.INTERRUPTED)
            await asyncio.shield(self._end())
            raise
        except Exception as exc:  # a defect must still end the execution in the history
            log.exception("plan %s execution %s failed unexpectedly", self.plan.name,
                          execution.id)
            execution.error = f"{type(exc).__name__}: {exc}"
            self._skip_pending(execution.error)
            self._set(PlanStatus.FAILED)
        await self._end()

    async def _flow(self) -> None:
        plan, ctx, execution = self.plan, self.context, self.execution
        if await ctx.switch.paused():
            raise PlanStopped("the executor is paused (backstop executor resume)")
        if not inside(tuple(plan.spec.windows), ctx.clock.now()):
            windows = ", ".join(w.text for w in plan.spec.windows)
            raise PlanStopped(f"outside the maintenance window ({windows})")
        destination = plan.spec.destination
        reason = await asyncio.to_thread(check_mount, destination)
        if reason is not None:
            raise PlanStopped(reason)
        space = await asyncio.to_thread(check_space, destination, plan.spec.output,
                                        ZoneInfo(plan.timezone))
        execution.removed += space.removed
        if not space.ok:
            raise PlanStopped(space.reason or "not enough space")

        execution.activities = await self._expand()
        await ctx.history.expanded(execution)
        tasks = execution.tasks
        if all(t.status.final for t in tasks):
            if any(t.status is TaskStatus.FAILED for t in tasks):
                raise PlanStopped("no task can run", PlanStatus.FAILED)
            raise PlanStopped("every task was skipped", PlanStatus.SKIPPED)

        env = environment(plan, execution)
        if plan.spec.scripts.pre is not None:
            run = await self._script("pre_plan", plan.spec.scripts.pre, env)
            if not run.ok:
                raise PlanStopped(failure(run))
        await self._run_tasks([t for t in tasks if not t.status.final])
        status = self._outcome()
        if plan.spec.scripts.post is not None:
            run = await self._script("post_plan", plan.spec.scripts.post,
                                     {**env, "BACKSTOP_STATUS": status.value})
            if not run.ok:
                execution.error = failure(run)
                status = PlanStatus.FAILED
        self._set(status)

    async def _expand(self) -> list[ActivityExecution]:
        """Probe each matched target and discover its items (a few at once), then make the
        tasks."""
        plan, registry = self.plan, self.context.plugins
        matched = targets_of(plan, self.inventory)
        found: dict[tuple[int, str], Found] = {}
        work: list[tuple[int, Plugin, str]] = []
        for index, (activity, names) in enumerate(zip(plan.spec.activities, matched,
                                                      strict=True)):
            try:
                plugin, _ = registry.for_action(activity.action)
            except PluginError as exc:
                found.update({(index, n): Found(reason=exc.reason, failed=True) for n in names})
                continue
            self.plugins[index] = plugin
            work += [(index, plugin, name) for name in names]
        targets: dict[str, Target] = {}
        queue = iter(work)

        async def worker() -> None:
            for index, plugin, name in queue:  # shared: each entry is taken once
                found[(index, name)] = await self._discover(index, plugin, name, targets)

        await asyncio.gather(*(worker() for _ in range(min(DISCOVERY_PARALLEL, len(work)))))
        now = self.context.clock.now()
        activities = expand(plan, matched, found, self.execution.id, now)
        for run in activities:
            run.settle(now)
        return activities

    async def _discover(self, index: int, plugin: Plugin, name: str,
                        targets: dict[str, Target]) -> Found:
        activity = self.plan.spec.activities[index]
        target = targets.get(name)
        if target is None:
            declared = self.inventory.get(name)
            assert declared is not None
            target = targets[name] = plugin_target(declared)
        try:
            await plugin.probe(target, activity.action, activity.options)
            items = await items_for(plugin, target, activity.action, activity.items,
                                    activity.options)
        except PluginError as exc:
            return Found(reason=exc.reason)
        except Exception as exc:
            log.exception("discovery on %s failed", name)
            return Found(reason=f"{type(exc).__name__}: {exc}", failed=True)
        for item in items:
            self.items[(index, name, item.name)] = item
        return Found(items=[item.name for item in items])

    async def _run_tasks(self, tasks: list[TaskExecution]) -> None:
        """Each target's tasks one after the other; targets in parallel up to the limit."""
        by_target: dict[str, list[TaskExecution]] = {}
        for task in tasks:
            by_target.setdefault(task.target, []).append(task)
        gate = asyncio.Semaphore(self.plan.spec.parallel or self.context.parallel)
        space_lock = asyncio.Lock()

        async def one_target(target: str, queue: list[TaskExecution]) -> None:
            declared = self.inventory.get(target)
            assert declared is not None
            as_plugin_sees = plugin_target(declared)
            for task in queue:
                async with gate, self.context.locks.hold(target, task.id):
                    await TaskRun(
                        self.plan, self.plan.spec.activities[task.activity_index],
                        self.execution, task, as_plugin_sees,
                        self.items[(task.activity_index, target, task.item)],
                        self.plugins[task.activity_index], self.context, space_lock).run()
                self.execution.activities[task.activity_index].settle(self.context.clock.now())

        runs = [asyncio.create_task(one_target(t, q), name=f"executor-target-{t}")
                for t, q in by_target.items()]
        try:
            await asyncio.gather(*runs)
        except BaseException:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise

    async def _script(self, name: str, script: Script, env: dict[str, str]) -> Any:
        run = await run_script(name, script, env, default_timeout=self.context.script_timeout,
                               limit=self.context.output_limit)
        self.execution.scripts.append(run)
        return run

    def _outcome(self) -> PlanStatus:
        counts = self.execution.counts()
        if counts[TaskStatus.FAILED] or counts[TaskStatus.INTERRUPTED]:
            return PlanStatus.FAILED
        if counts[TaskStatus.SKIPPED]:
            return PlanStatus.PARTIAL
        return PlanStatus.SUCCEEDED

    def _skip_pending(self, reason: str) -> None:
        now = self.context.clock.now()
        for task in self.execution.tasks:
            if not task.status.final:
                task.status, task.status_at = TaskStatus.SKIPPED, now
                task.error = f"not run: {reason}"

    def _set(self, status: PlanStatus) -> None:
        execution = self.execution
        execution.status, execution.status_at = status, self.context.clock.now()
        if status.final:
            execution.finished_at = execution.status_at
            for activity in execution.activities:
                for task in activity.tasks:
                    if task.status is TaskStatus.RUNNING or (
                            status is PlanStatus.INTERRUPTED and not task.status.final):
                        task.status, task.status_at = TaskStatus.INTERRUPTED, execution.status_at
                activity.settle(execution.status_at)

    async def _end(self) -> None:
        await self.context.history.finished(self.execution)
        await self._publish(self.context.sink.plan_finished, self.execution)

    async def _publish(self, send: Callable[[PlanExecution], Awaitable[None]],
                       execution: PlanExecution) -> None:
        try:
            await send(execution)
        except Exception:
            log.exception("plan %s execution %s: result not published", self.plan.name,
                          execution.id)
