"""The task flow (DPOD's task steps): window → space → pre-task script → quiesce and wait →
backup → unquiesce (always) and wait → verification → retention → post-task script.

A step that stops the task fails it with the reason; the unquiesce runs whatever happened after
a quiesce was asked for (an error, a timeout, the task being cancelled), and its intent is
recorded before the quiesce so that a replica can finish it after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from services.executor.executions import FileRecord, PlanExecution, TaskExecution, TaskStatus
from services.executor.plans.models import Activity, Plan, Script
from services.executor.plans.models import Target as DeclaredTarget
from services.executor.plans.paths import render, reserve
from services.executor.plans.windows import inside
from services.executor.plugins.api import (
    BackupFailed,
    BackupResult,
    Item,
    Plugin,
    PluginError,
    QuiesceFailed,
    RetentionPolicy,
    SshAccess,
    Target,
    TaskContext,
    VerificationFailed,
)
from services.executor.ports import ExecutionContext, UnquiesceIntent
from services.executor.scripts import failure, run_script
from services.executor.space import check_space

log = logging.getLogger("backstop.executor")

# Seconds between two "is it quiesced yet?" questions.
POLL_SECONDS = 0.5


class TaskFailed(Exception):
    """A step stopped the task; the message is the task's error."""


def plugin_target(target: DeclaredTarget) -> Target:
    """The inventory's target as plugins see it."""
    ssh = target.spec.ssh
    access = None if ssh is None else SshAccess(
        user=ssh.user, port=ssh.port, key=Path(ssh.key) if ssh.key else None,
        options=tuple(ssh.options), connect_timeout=ssh.connect_timeout)
    return Target(name=target.name, address=target.spec.address, labels=target.labels,
                  ssh=access)


def environment(plan: Plan, execution: PlanExecution, task: TaskExecution | None = None,
                target: Target | None = None, output: Path | None = None) -> dict[str, str]:
    """The variables scripts (and plugins' tools) get."""
    env = {"BACKSTOP_PLAN": plan.name, "BACKSTOP_EXECUTION": execution.id,
           "BACKSTOP_JOB": plan.job, "BACKSTOP_ACCOUNT": plan.spec.account,
           "BACKSTOP_DESTINATION": str(Path(plan.spec.destination.path).absolute())}
    if task is not None:
        env.update({"BACKSTOP_TASK": task.id, "BACKSTOP_ACTIVITY": str(task.activity_index + 1),
                    "BACKSTOP_ACTION": task.action, "BACKSTOP_TARGET": task.target,
                    "BACKSTOP_ITEM": task.item})
    if target is not None:
        env["BACKSTOP_TARGET_ADDRESS"] = target.address
    if output is not None:
        env["BACKSTOP_OUTPUT"] = str(output)
    return env


@dataclass
class TaskRun:
    plan: Plan
    activity: Activity
    execution: PlanExecution
    task: TaskExecution
    target: Target
    item: Item
    plugin: Plugin
    context: ExecutionContext
    space_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    unquiesce_failed: bool = field(default=False, init=False)

    async def run(self) -> None:
        """Run the task to a final status (re-raises cancellation, after unquiescing)."""
        task, clock = self.task, self.context.clock
        task.started_at = clock.now()
        await self._status(TaskStatus.RUNNING)
        try:
            await self._steps()
        except (TaskFailed, PluginError) as exc:
            self._fail(exc.reason if isinstance(exc, PluginError) else str(exc))
            await self._finish(TaskStatus.FAILED)
            return
        except asyncio.CancelledError:
            task.error = "interrupted: the executor stopped while the task ran"
            await asyncio.shield(self._finish(TaskStatus.INTERRUPTED))
            raise
        except Exception as exc:  # a plugin's bug must not take the plan down
            log.exception("task %s failed unexpectedly", task.id)
            self._fail(f"{type(exc).__name__}: {exc}")
            await self._finish(TaskStatus.FAILED)
            return
        await self._finish(TaskStatus.SUCCEEDED)

    async def _steps(self) -> None:
        plan, activity, task, ctx = self.plan, self.activity, self.task, self.context
        now = ctx.clock.now()
        if not inside(tuple(plan.spec.windows), now):
            raise TaskFailed("the maintenance window closed before the task started")
        if plan.spec.destination.min_free is not None:  # else there is nothing to check
            async with self.space_lock:  # one pruning at a time
                space = await asyncio.to_thread(check_space, plan.spec.destination,
                                                self._template, ZoneInfo(plan.timezone))
            task.removed += space.removed
            if not space.ok:
                raise TaskFailed(space.reason or "not enough space")
        options = self.plugin.options(activity.action, activity.options)  # BadOptions
        env = environment(plan, self.execution, task, self.target)
        if activity.scripts.pre is not None:
            await self._script("pre_task", activity.scripts.pre, env)
        # In the loop, not a thread: a mkdir or two, against 1-2 ms of CPU for a thread hop;
        # the plugin's backup goes on in the same folder from the loop anyway.
        destination, output = self._reserve(now)
        task.output_path = str(output)
        env["BACKSTOP_OUTPUT"] = str(output)
        context = TaskContext(target=self.target, item=self.item, action=activity.action,
                              options=options.model_dump(exclude_unset=True),
                              output=output, destination=destination,
                              started=now, timezone=plan.timezone, env=env)
        try:
            result = await self._backup(context)
        except BaseException:
            await asyncio.to_thread(_drop_if_empty, output)
            raise
        self._record(result)
        if activity.verify:
            try:
                await self.plugin.verify(context, result)
            except VerificationFailed as exc:
                problems = "; ".join(exc.problems[:5])
                raise TaskFailed(f"verification failed: {exc.reason}"
                                 + (f" ({problems})" if problems else "")) from None
        if activity.retention is not None and not activity.retention.empty:
            kept = activity.retention
            done = await self.plugin.retain(context, RetentionPolicy(
                keep_last=kept.keep_last, keep_daily=kept.keep_daily,
                keep_weekly=kept.keep_weekly, keep_monthly=kept.keep_monthly))
            task.removed += done.removed
        if activity.scripts.post is not None:
            await self._script("post_task", activity.scripts.post,
                               {**env, "BACKSTOP_STATUS": "succeeded"})

    def _reserve(self, now: datetime) -> tuple[Path, Path]:
        """The destination (absolute) and this backup's own new folder in it."""
        plan, task = self.plan, self.task
        destination = Path(plan.spec.destination.path).absolute()
        output = reserve(render(
            self._template, destination=str(destination), target=task.target,
            action=task.action, item=self.item.slug, plan=plan.name,
            activity=task.activity_index + 1, moment=now.astimezone(ZoneInfo(plan.timezone))))
        return destination, output

    @property
    def _template(self) -> str:
        return self.activity.output or self.plan.spec.output

    async def _script(self, name: str, script: Script, env: dict[str, str]) -> None:
        run = await run_script(name, script, env, default_timeout=self.context.script_timeout,
                               limit=self.context.output_limit)
        self.task.scripts.append(run)
        if not run.ok:
            raise TaskFailed(failure(run))

    async def _backup(self, context: TaskContext) -> BackupResult:
        """The plugin's backup, inside a quiesce when the activity asks for one."""
        quiesce = self.activity.quiesce
        if quiesce is None:
            return await self._transfer(context)
        if not self.plugin.quiesces:
            raise TaskFailed(f"plugin {self.plugin.name} cannot quiesce")
        if await self.plugin.is_quiesced(context):
            raise TaskFailed(f"{self.task.target} is already quiesced (by someone else?); "
                             "not touching it")
        intent = UnquiesceIntent(self.execution.id, self.task.id, self.plan.name,
                                 self.task.target, self.activity.action, self.task.item,
                                 {"context": context.model_dump(mode="json")})
        await self.context.intents.record(intent)
        try:
            await self.plugin.quiesce(context)
            await self._until(context, True, quiesce.timeout + quiesce.grace,
                              f"{self.task.target} was not quiesced within "
                              f"{quiesce.timeout:g} s + {quiesce.grace:g} s grace; cancelled")
            return await self._transfer(context)
        finally:
            # Always, also on error and cancellation; shielded so a second cancellation cannot
            # leave the target quiesced.
            await asyncio.shield(self._unquiesce(context, intent))

    async def _transfer(self, context: TaskContext) -> BackupResult:
        try:
            return await self.plugin.backup(context)
        except BackupFailed as exc:
            if exc.result is not None:
                self._record(exc.result)
            raise

    async def _unquiesce(self, context: TaskContext, intent: UnquiesceIntent) -> None:
        quiesce = self.activity.quiesce
        assert quiesce is not None
        try:
            await self.plugin.unquiesce(context)
            await self._until(context, False, quiesce.unquiesce_timeout + quiesce.grace,
                              f"{self.task.target} did not confirm the unquiesce within "
                              f"{quiesce.unquiesce_timeout:g} s + {quiesce.grace:g} s grace")
        except (TaskFailed, QuiesceFailed) as exc:
            # The unquiesce was asked for (it carries on on the target); the task fails.
            self._fail(exc.reason if isinstance(exc, QuiesceFailed) else str(exc))
            self.unquiesce_failed = True
            if isinstance(exc, QuiesceFailed):
                return  # not known to be asked: the intent stays for a replica to finish
        await self.context.intents.clear(intent)

    async def _until(self, context: TaskContext, quiesced: bool, limit: float,
                     message: str) -> None:
        """Poll ``is_quiesced`` until it says ``quiesced``; :class:`TaskFailed` after ``limit``
        seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while await self.plugin.is_quiesced(context) != quiesced:
            if loop.time() >= deadline:
                raise TaskFailed(message)
            await asyncio.sleep(min(POLL_SECONDS, max(deadline - loop.time(), 0.01)))

    def _record(self, result: BackupResult) -> None:
        task = self.task
        task.files_transferred = result.files_transferred
        task.transfer_errors = len(result.transfer_errors)
        task.bytes = result.bytes
        task.files = [FileRecord(f.path, f.size, f.checksum) for f in result.files]
        task.facts = dict(result.facts)

    async def _status(self, status: TaskStatus) -> None:
        self.task.status, self.task.status_at = status, self.context.clock.now()
        await self.context.history.task_changed(self.execution, self.task)

    async def _finish(self, status: TaskStatus) -> None:
        task = self.task
        if status is TaskStatus.SUCCEEDED and self.unquiesce_failed:
            status = TaskStatus.FAILED
        task.finished_at = self.context.clock.now()
        await self._status(status)
        try:
            await self.context.sink.task_finished(self.execution, task)
        except Exception:  # the history has it; the service logs and counts its own failures
            log.exception("task %s: its result could not be published", task.id)

    def _fail(self, reason: str) -> None:
        """Add a reason to the task's error (a failed unquiesce after a failed backup: both)."""
        task = self.task
        task.error = reason if not task.error else f"{task.error}; {reason}"


def _drop_if_empty(folder: Path) -> None:
    """A backup that wrote nothing leaves no folder (retention would count it as a backup)."""
    with contextlib.suppress(OSError):
        folder.rmdir()
