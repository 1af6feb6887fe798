"""The history of plan executions in the database: the recorder the flow reports to, and the
upkeep (keep the last N executions per plan, end the executions of a dead executor as
``interrupted``).

Values are copied from the execution in the event loop, then written on the history's own
database lane: the flow goes on changing its records while a write runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlmodel import Session

from services.executor.executions import (
    ActivityExecution,
    PlanExecution,
    PlanStatus,
    ScriptRun,
    TaskExecution,
    TaskStatus,
)
from services.executor.tables import (
    ActivityExecutionRow,
    PlanExecutionRow,
    PlanRow,
    TargetFactRow,
    TaskFileRow,
    TaskRow,
)
from shared.db import Database, Lane, core_table, rowcount
from shared.events import utcnow

LANE = Lane("executor-history", postgres=2, sqlite=1)
_ROWS_PER_STATEMENT = 5000


class DatabaseHistory:
    """:class:`~services.executor.ports.HistoryRecorder` on the database."""

    def __init__(self, db: Database, keep: int = 40) -> None:
        self.db = db
        self.keep = keep

    async def started(self, execution: PlanExecution) -> None:
        values = _execution_values(execution)
        await self.db.run(lambda s: _start(s, values), LANE)

    async def expanded(self, execution: PlanExecution) -> None:
        values = _execution_values(execution)
        activities = [_activity_values(execution.id, a) for a in execution.activities]
        tasks = [_task_values(execution.id, t) for t in execution.tasks]
        await self.db.run(lambda s: _expanded(s, values, activities, tasks), LANE)

    async def task_changed(self, execution: PlanExecution, task: TaskExecution) -> None:
        await self.tasks_changed([(execution, task)])

    async def tasks_changed(self, changes: Sequence[tuple[PlanExecution, TaskExecution]]
                            ) -> None:
        """Several tasks' changes in one transaction (each execution's and activity's counts
        written once, as they are now)."""
        batch = _Batch()
        for execution, task in changes:
            batch.add(execution, task)
        if batch.tasks:
            await self.db.run(batch.write, LANE)

    async def finished(self, execution: PlanExecution) -> None:
        values = _execution_values(execution)
        activities = [_activity_values(execution.id, a) for a in execution.activities]
        tasks = [_task_values(execution.id, t) for t in execution.tasks]
        keep = self.keep
        await self.db.run(lambda s: _finished(s, values, activities, tasks, keep), LANE)


def _scripts(runs: Sequence[ScriptRun]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(run) for run in runs]


def _execution_values(execution: PlanExecution) -> dict[str, Any]:
    counts = execution.counts()
    return {
        "id": execution.id, "plan": execution.plan, "runner": execution.runner,
        "status": execution.status.value, "status_at": execution.status_at,
        "queued_at": execution.queued_at, "started_at": execution.started_at,
        "finished_at": execution.finished_at, "targets": execution.target_count,
        "items": execution.item_count, "succeeded": counts[TaskStatus.SUCCEEDED],
        "failed": counts[TaskStatus.FAILED] + counts[TaskStatus.INTERRUPTED],
        "skipped": counts[TaskStatus.SKIPPED], "error": execution.error,
        "scripts": _scripts(execution.scripts), "removed": list(execution.removed),
    }


def _activity_values(execution_id: str, activity: ActivityExecution) -> dict[str, Any]:
    counts = activity.counts()
    return {
        "execution_id": execution_id, "activity": activity.index, "action": activity.action,
        "target_pattern": activity.target_pattern, "item_pattern": activity.item_pattern,
        "status": activity.status.value, "status_at": activity.status_at,
        "succeeded": counts[TaskStatus.SUCCEEDED],
        "failed": counts[TaskStatus.FAILED] + counts[TaskStatus.INTERRUPTED],
        "skipped": counts[TaskStatus.SKIPPED],
    }


def _task_values(execution_id: str, task: TaskExecution) -> dict[str, Any]:
    return {
        "id": task.id, "execution_id": execution_id, "activity": task.activity_index,
        "sequence": task.sequence, "target": task.target, "item": task.item,
        "action": task.action, "status": task.status.value, "status_at": task.status_at,
        "error": task.error, "output_path": task.output_path, "started_at": task.started_at,
        "finished_at": task.finished_at, "files_transferred": task.files_transferred,
        "transfer_errors": task.transfer_errors, "bytes": task.bytes,
        "scripts": _scripts(task.scripts), "removed": list(task.removed),
    }


def _start(session: Session, values: dict[str, Any]) -> None:
    plan = session.get(PlanRow, values["plan"])
    tenant = {"reseller_id": plan.reseller_id if plan else "",
              "customer_id": plan.customer_id if plan else "",
              "account_id": plan.account_id if plan else ""}
    table = core_table(PlanExecutionRow)
    existing = session.execute(select(table.c.id).where(table.c.id == values["id"])).first()
    if existing is None:
        session.execute(table.insert().values(**values, **tenant))
    else:  # queued by the service before it started
        _update_execution(session, values)


def _update_execution(session: Session, values: dict[str, Any]) -> None:
    table = core_table(PlanExecutionRow)
    changed = {k: v for k, v in values.items() if k not in ("id", "plan", "queued_at")}
    session.execute(update(table).where(table.c.id == values["id"]).values(**changed))


def _in_chunks(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        session.execute(statement, rows[start:start + _ROWS_PER_STATEMENT])


def _expanded(session: Session, values: dict[str, Any], activities: list[dict[str, Any]],
              tasks: list[dict[str, Any]]) -> None:
    _update_execution(session, values)
    if activities:
        session.execute(core_table(ActivityExecutionRow).insert(), activities)
    _in_chunks(session, core_table(TaskRow).insert(), tasks)


def _task_update() -> Any:
    table = core_table(TaskRow)
    names = [c.name for c in table.columns if c.name not in ("id",)]
    return (update(table).where(table.c.id == bindparam("_id"))
            .values({n: bindparam(f"_{n}") for n in names}))


def _bound(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{f"_{k}": v for k, v in row.items()} for row in rows]


def _activity_update(session: Session, activities: list[dict[str, Any]]) -> None:
    if not activities:
        return
    table = core_table(ActivityExecutionRow)
    statement = (update(table).where(table.c.execution_id == bindparam("_execution_id"),
                                     table.c.activity == bindparam("_activity"))
                 .values(status=bindparam("_status"), status_at=bindparam("_status_at"),
                         succeeded=bindparam("_succeeded"), failed=bindparam("_failed"),
                         skipped=bindparam("_skipped")))
    session.execute(statement, _bound(activities))


class _Batch:
    """Task changes copied for one write: rows by key, so a task, an activity or an
    execution changed twice is written once, with its latest values."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.activities: dict[tuple[str, int], dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, list[dict[str, Any]]] = {}

    def add(self, execution: PlanExecution, task: TaskExecution) -> None:
        if execution.id not in self.executions:
            self.executions[execution.id] = _execution_values(execution)
        index = task.activity_index
        if (execution.id, index) not in self.activities:
            self.activities[(execution.id, index)] = _activity_values(
                execution.id, execution.activities[index])
        self.tasks[task.id] = _task_values(execution.id, task)
        if task.status.final:
            self.files[task.id] = [
                {"task_id": task.id, "execution_id": execution.id, "path": f.path,
                 "size": f.size, "checksum": f.checksum} for f in task.files]
            at = task.finished_at or utcnow()
            self.facts[task.id] = [
                {"task_id": task.id, "name": name[:128], "execution_id": execution.id,
                 "target": task.target, "value": value, "observed_at": at}
                for name, value in task.facts.items()]

    def write(self, session: Session) -> None:
        session.execute(_task_update(), _bound(list(self.tasks.values())))
        _activity_update(session, list(self.activities.values()))
        for values in self.executions.values():
            _update_execution(session, values)
        if self.files:  # a task ends once: replace, in case the write is repeated
            ended = list(self.files)
            files_table, facts_table = core_table(TaskFileRow), core_table(TargetFactRow)
            session.execute(delete(files_table).where(files_table.c.task_id.in_(ended)))
            session.execute(delete(facts_table).where(facts_table.c.task_id.in_(ended)))
            _in_chunks(session, files_table.insert(),
                       [row for rows in self.files.values() for row in rows])
            facts = [row for rows in self.facts.values() for row in rows]
            if facts:
                session.execute(facts_table.insert(), facts)


def _finished(session: Session, values: dict[str, Any], activities: list[dict[str, Any]],
              tasks: list[dict[str, Any]], keep: int) -> None:
    _update_execution(session, values)
    table = core_table(ActivityExecutionRow)
    known = {row.activity for row in session.execute(
        select(table.c.activity).where(table.c.execution_id == values["id"]))}
    fresh = [a for a in activities if a["activity"] not in known]
    if fresh:  # stopped before its tasks were recorded (expansion failed)
        session.execute(table.insert(), fresh)
    _activity_update(session, [a for a in activities if a["activity"] in known])
    task_table = core_table(TaskRow)
    stored = {row.id: row.status for row in session.execute(
        select(task_table.c.id, task_table.c.status)
        .where(task_table.c.execution_id == values["id"]))}
    changed = [t for t in tasks if t["id"] in stored and stored[t["id"]] != t["status"]]
    if changed:
        _in_chunks(session, _task_update(), _bound(changed))
    missing = [t for t in tasks if t["id"] not in stored]
    _in_chunks(session, task_table.insert(), missing)
    prune(session, values["plan"], keep)


def prune(session: Session, plan: str, keep: int) -> int:
    """Remove the plan's executions beyond the newest ``keep`` (by queue time), with their
    activities, tasks, files and facts; returns how many executions went."""
    table = core_table(PlanExecutionRow)
    old = [row.id for row in session.execute(
        select(table.c.id).where(table.c.plan == plan)
        .order_by(table.c.queued_at.desc(), table.c.id.desc()).offset(keep))]
    if old:
        remove_executions(session, old)
    return len(old)


def remove_executions(session: Session, ids: list[str]) -> None:
    for model, column in ((TargetFactRow, "execution_id"), (TaskFileRow, "execution_id"),
                          (TaskRow, "execution_id"), (ActivityExecutionRow, "execution_id"),
                          (PlanExecutionRow, "id")):
        table = core_table(model)
        session.execute(delete(table).where(table.c[column].in_(ids)))


def interrupt(session: Session, *, runner: str | None = None,
              execution_ids: Sequence[str] | None = None, now: datetime | None = None,
              reason: str = "interrupted: its executor stopped") -> int:
    """End as ``interrupted`` the executions still queued or running — those of ``runner`` (an
    executor known dead) or the ones named — and their unfinished tasks. Returns how many."""
    when = now or utcnow()
    table = core_table(PlanExecutionRow)
    query = select(table.c.id).where(
        table.c.status.in_([PlanStatus.QUEUED.value, PlanStatus.RUNNING.value]))
    if runner is not None:
        query = query.where(table.c.runner == runner)
    if execution_ids is not None:
        query = query.where(table.c.id.in_(list(execution_ids)))
    ids = [row.id for row in session.execute(query)]
    if not ids:
        return 0
    tasks = core_table(TaskRow)
    session.execute(update(tasks).where(
        tasks.c.execution_id.in_(ids),
        tasks.c.status.in_([TaskStatus.PENDING.value, TaskStatus.RUNNING.value]))
        .values(status=TaskStatus.INTERRUPTED.value, status_at=when, error=reason))
    activities = core_table(ActivityExecutionRow)
    session.execute(update(activities).where(
        activities.c.execution_id.in_(ids),
        activities.c.status.in_([TaskStatus.PENDING.value, TaskStatus.RUNNING.value]))
        .values(status=TaskStatus.FAILED.value, status_at=when))
    return rowcount(session, update(table).where(table.c.id.in_(ids)).values(
        status=PlanStatus.INTERRUPTED.value, status_at=when, finished_at=when, error=reason))


def queue(session: Session, execution_id: str, plan: str, queued_at: datetime,
          runner: str = "") -> None:
    """Record an execution as queued (before a replica starts it): its start time in the
    history is when it entered the queue, as in DPOD."""
    row = session.get(PlanRow, plan)
    session.add(PlanExecutionRow(
        id=execution_id, plan=plan, reseller_id=row.reseller_id if row else "",
        customer_id=row.customer_id if row else "", account_id=row.account_id if row else "",
        runner=runner, status=PlanStatus.QUEUED.value, status_at=queued_at,
        queued_at=queued_at))


__all__ = ["LANE", "DatabaseHistory", "interrupt", "prune", "queue",
           "remove_executions"]
