"""Results as the rest of Backstop knows them: run events on the ingest stream, a plan report.

The executor is one more backup client. What it runs reaches the evaluator the way every
client's runs do, as events on ``BACKSTOP_INGEST`` under the plan's account, so failed, missed
and too-long plans alert through the one alert path there is:

- the plan's schedule is the job's schedule (``ScheduleSet``, job = the plan's job name), so the
  evaluator expects a run at each tick and raises ``missed_run`` when none comes;
- a plan execution is a run of that job: ``started`` when it starts (``run_too_long`` is armed),
  then ``success`` / ``warning`` / ``failure`` with the counts and the error;
- every task is a run of a job of its own, ``<plan job>.<target>.<action>[.<item>]``, so the
  alert names the machine whose backup failed and each target's backups have a history.

Event ids derive from the execution (and task) id: published twice (a retry, a replica
finishing a dead one's execution), they are stored once. A plan with report recipients also
gets a :class:`~shared.events.PlanReported`, which the notifier mails.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid

from services.executor.executions import PlanExecution, PlanStatus, TaskExecution, TaskStatus
from services.executor.plans.models import Plan
from services.executor.plugins.api import WHOLE
from shared.bus import Bus, BusUnavailable
from shared.events import (
    Event,
    PlanReported,
    ReportedTask,
    RunReported,
    RunStatus,
    ScheduleSet,
    Tenant,
)

log = logging.getLogger(__name__)

CLIENT_NAME = "backstop-executor"
_SCHEDULE_NAMESPACE = uuid.UUID("9b7e0c55-2a0f-4f0e-8d7a-0c3d6e1f5a22")
_NOT_IN_JOB = re.compile(r"[^A-Za-z0-9._-]+")
# A run event that cannot be stored (NATS away) is tried this long before it is given up
# (logged): the plan goes on, and a plan that never reports is a missed run.
PUBLISH_PATIENCE = 60.0

PLAN_STATUS: dict[PlanStatus, RunStatus] = {
    PlanStatus.SUCCEEDED: "success",
    PlanStatus.PARTIAL: "warning",
    PlanStatus.SKIPPED: "warning",
    PlanStatus.STOPPED: "failure",
    PlanStatus.FAILED: "failure",
    PlanStatus.INTERRUPTED: "failure",
}
TASK_STATUS: dict[TaskStatus, RunStatus] = {
    TaskStatus.SUCCEEDED: "success",
    TaskStatus.SKIPPED: "warning",
    TaskStatus.FAILED: "failure",
    TaskStatus.INTERRUPTED: "failure",
}


def task_job(plan_job: str, task: TaskExecution) -> str:
    """The job a task reports as: a valid job name, the same for the same target and item."""
    parts = [plan_job, task.target, task.action.replace(".", "-")]
    if task.item and task.item != WHOLE:
        parts.append(task.item)
    name = _NOT_IN_JOB.sub("_", ".".join(parts)).strip("._-") or plan_job
    if len(name) > 128:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:117]}.{digest}"
    return name


def schedule_event(plan: Plan, tenant: Tenant, *, expected: bool = True) -> ScheduleSet:
    """The plan's schedule as its job's; not ``expected`` (disabled) or without a schedule, no
    schedule at all, so the evaluator expects no run. The id follows the content:
    re-registering an unchanged schedule is stored once."""
    body: dict[str, str | None] = {"cron": None, "timezone": None}
    if expected and plan.spec.schedule is not None:
        body = {"cron": plan.spec.schedule.cron, "timezone": plan.spec.schedule.timezone}
    content = json.dumps(body, sort_keys=True)
    event_id = uuid.uuid5(_SCHEDULE_NAMESPACE, f"{tenant.account}/{plan.job}/{content}").hex
    return ScheduleSet(event_id=event_id, tenant=tenant, job=plan.job, **body)


def _message(execution: PlanExecution) -> str:
    """What the alert says: the counts, and the plan's error or else its first failed task."""
    counts = execution.counts()
    text = (f"{counts[TaskStatus.SUCCEEDED]} succeeded, {counts[TaskStatus.FAILED]} failed, "
            f"{counts[TaskStatus.SKIPPED]} skipped")
    failed = [t for t in execution.tasks if t.status is TaskStatus.FAILED]
    if execution.error:
        return f"{execution.error} ({text})"
    if failed:
        return f"{_task_message(failed[0])} ({text})"
    return f"plan {execution.status} ({text})"


def _task_message(task: TaskExecution) -> str:
    text = f"{task.action} on {task.target}"
    if task.item and task.item != WHOLE:
        text += f" ({task.item})"
    if task.error:
        text += f": {task.error}"
    return text


class Publisher:
    """Stores events on the bus, patiently: results must not be lost to a NATS hiccup."""

    def __init__(self, bus: Bus, patience: float = PUBLISH_PATIENCE) -> None:
        self.bus = bus
        self.patience = patience

    async def publish(self, event: Event) -> bool:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.patience
        while True:
            try:
                await self.bus.publish(event)
                return True
            except BusUnavailable as exc:
                if loop.time() > give_up:
                    log.error("executor result %s (%s) not stored: %s", event.event_id,
                              event.type, exc)
                    return False
                await asyncio.sleep(1.0)


class PlanResults:
    """The ``ResultSink`` of one plan: run events under the plan's account, the report."""

    def __init__(self, publisher: Publisher, plan: Plan, tenant: Tenant) -> None:
        self.publisher = publisher
        self.plan = plan
        self.tenant = tenant
        # Task results are stored in the background (the next task need not wait for
        # JetStream's ack); the plan's result waits for them, so it is the last one stored.
        self._pending: set[asyncio.Task[bool]] = set()

    async def plan_started(self, execution: PlanExecution) -> None:
        await self.publisher.publish(RunReported(
            event_id=f"{execution.id}.started", tenant=self.tenant, job=self.plan.job,
            status="started", run_id=execution.id,
            started_at=execution.started_at or execution.queued_at,
            client_name=CLIENT_NAME, message=f"plan {self.plan.name} started"))

    async def task_finished(self, execution: PlanExecution, task: TaskExecution) -> None:
        status = TASK_STATUS.get(task.status)
        if status is None:
            return
        publishing = asyncio.create_task(self.publisher.publish(RunReported(
            event_id=f"{execution.id}.{task.id}", tenant=self.tenant,
            job=task_job(self.plan.job, task), status=status, run_id=f"{execution.id}.{task.id}",
            started_at=task.started_at, finished_at=task.finished_at,
            duration_seconds=task.duration, bytes_transferred=task.bytes,
            files_transferred=task.files_transferred, error_count=task.transfer_errors,
            message=_task_message(task)[:2000], client_name=CLIENT_NAME)))
        self._pending.add(publishing)
        publishing.add_done_callback(self._pending.discard)

    async def plan_finished(self, execution: PlanExecution) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        status = PLAN_STATUS.get(execution.status, "failure")
        tasks = execution.tasks
        await self.publisher.publish(RunReported(
            event_id=f"{execution.id}.finished", tenant=self.tenant, job=self.plan.job,
            status=status, run_id=execution.id, started_at=execution.started_at,
            finished_at=execution.finished_at,
            duration_seconds=_seconds(execution),
            bytes_transferred=sum(t.bytes for t in tasks),
            files_transferred=sum(t.files_transferred for t in tasks),
            error_count=execution.counts()[TaskStatus.FAILED],
            message=_message(execution)[:2000], client_name=CLIENT_NAME))
        if self.plan.spec.report.recipients:
            await self.publisher.publish(report(self.plan, self.tenant, execution))


def _seconds(execution: PlanExecution) -> float | None:
    if execution.started_at is None or execution.finished_at is None:
        return None
    return max(0.0, (execution.finished_at - execution.started_at).total_seconds())


def report(plan: Plan, tenant: Tenant, execution: PlanExecution) -> PlanReported:
    counts = execution.counts()
    return PlanReported(
        event_id=f"{execution.id}.report", tenant=tenant, plan=plan.name,
        execution_id=execution.id, status=str(execution.status),
        recipients=list(plan.spec.report.recipients), started_at=execution.started_at,
        finished_at=execution.finished_at, error=execution.error,
        succeeded=counts[TaskStatus.SUCCEEDED], failed=counts[TaskStatus.FAILED],
        skipped=counts[TaskStatus.SKIPPED],
        tasks=[ReportedTask(target=t.target, item=t.item, action=t.action, status=str(t.status),
                            error=t.error, files=t.files_transferred, bytes=t.bytes,
                            duration_seconds=t.duration) for t in execution.tasks],
    )
