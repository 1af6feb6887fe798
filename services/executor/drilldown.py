"""Reading the history, DPOD's drill-down: a plan's executions → an execution's activities
and tasks → a task's files and the facts about its target. Every query filters by the caller's
:class:`~shared.scopes.Scope` in SQL (plans belong to their account's tenant), so an id from
another tenant reads as "not found". Rows are plain dicts, as the CLI, the JSON and the HTTP
API show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from services.executor.tables import (
    ActivityExecutionRow,
    PlanExecutionRow,
    PlanRow,
    TargetFactRow,
    TaskFileRow,
    TaskRow,
)
from shared.db import core_table
from shared.scopes import Scope

Row = dict[str, Any]


class NotFound(LookupError):
    """No such plan, execution or task in the caller's scope."""


def _executions_in(scope: Scope) -> Any:
    table = core_table(PlanExecutionRow)
    return scope.where(table.c.reseller_id, table.c.customer_id)


def plans(session: Session, scope: Scope) -> list[Row]:
    """Every plan in scope with its last execution's status."""
    table, runs = core_table(PlanRow), core_table(PlanExecutionRow)
    last = (select(runs.c.plan, func.max(runs.c.queued_at).label("at"))
            .group_by(runs.c.plan).subquery())
    in_scope = scope.where(table.c.reseller_id, table.c.customer_id)
    rows = session.execute(
        select(table.c.name, table.c.enabled, table.c.job, table.c.account_id,
               table.c.generation, table.c.applied_at, table.c.document, last.c.at)
        .outerjoin(last, last.c.plan == table.c.name)
        .where(in_scope).order_by(table.c.name)).all()
    # The status of each plan's last execution, in one query rather than one per plan.
    statuses: dict[str, str] = {row.plan: row.status for row in session.execute(
        select(runs.c.plan, runs.c.status)
        .join(last, (last.c.plan == runs.c.plan) & (last.c.at == runs.c.queued_at))
        .join(table, table.c.name == runs.c.plan).where(in_scope))}
    out = []
    for row in rows:
        spec = row.document.get("spec", {})
        schedule = spec.get("schedule")
        out.append({
            "name": row.name, "enabled": row.enabled, "account": spec.get("account"),
            "job": row.job,
            "schedule": f"{schedule['cron']} ({schedule['timezone']})" if schedule else None,
            "windows": spec.get("windows", []),
            "activities": len(spec.get("activities", [])),
            "generation": row.generation, "applied_at": row.applied_at,
            "last_run": row.at, "last_status": statuses.get(row.name),
        })
    return out


def plan(session: Session, scope: Scope, name: str) -> Row:
    """One plan as applied (the document) with its bookkeeping."""
    row = session.get(PlanRow, name)
    if row is None or not scope.admits(row.reseller_id, row.customer_id):
        raise NotFound(f"no plan {name!r}")
    return {"name": row.name, "enabled": row.enabled, "job": row.job,
            "account_id": row.account_id, "generation": row.generation,
            "applied_at": row.applied_at, "source": row.source, "document": row.document}


def executions(session: Session, scope: Scope, plan_name: str, *, limit: int = 40,
               offset: int = 0) -> tuple[list[Row], int]:
    """A plan's executions, newest first, and how many there are."""
    plan(session, scope, plan_name)  # NotFound
    table = core_table(PlanExecutionRow)
    where = (table.c.plan == plan_name, _executions_in(scope))
    found, total = _page(session, select(table).where(*where)
                         .order_by(table.c.queued_at.desc(), table.c.id.desc()), limit, offset)
    return [_execution_row(r._mapping) for r in found], total


def _page(session: Session, query: Any, limit: int, offset: int) -> tuple[list[Any], int]:
    """At most ``limit`` rows (0: all) from ``offset`` on, and how many match."""
    total = session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    return list(session.execute(query.limit(limit or None).offset(offset))), int(total)


def _execution_row(row: Any) -> Row:
    out = dict(row)
    for hidden in ("reseller_id", "customer_id"):
        out.pop(hidden, None)
    return out


def _require_execution(session: Session, scope: Scope, execution_id: str) -> None:
    """NotFound unless the execution is in scope (its id alone is read)."""
    table = core_table(PlanExecutionRow)
    if session.execute(select(table.c.id).where(table.c.id == execution_id,
                                                _executions_in(scope))).first() is None:
        raise NotFound(f"no execution {execution_id!r}")


def _require_task(session: Session, scope: Scope, task_id: str) -> None:
    """NotFound unless the task is in scope (its id alone is read)."""
    table, runs = core_table(TaskRow), core_table(PlanExecutionRow)
    if session.execute(select(table.c.id).join(runs, runs.c.id == table.c.execution_id)
                       .where(table.c.id == task_id, _executions_in(scope))).first() is None:
        raise NotFound(f"no task {task_id!r}")


def execution(session: Session, scope: Scope, execution_id: str) -> Row:
    """One execution with its activity executions (DPOD's second page)."""
    table = core_table(PlanExecutionRow)
    found = session.execute(select(table).where(table.c.id == execution_id,
                                                _executions_in(scope))).first()
    if found is None:
        raise NotFound(f"no execution {execution_id!r}")
    out = _execution_row(found._mapping)
    activities = core_table(ActivityExecutionRow)
    out["activities"] = [dict(r._mapping) for r in session.execute(
        select(activities).where(activities.c.execution_id == execution_id)
        .order_by(activities.c.activity))]
    return out


def tasks(session: Session, scope: Scope, execution_id: str, *, activity: int | None = None,
          limit: int = 0, offset: int = 0) -> tuple[list[Row], int]:
    """An execution's tasks in creation order (DPOD's third page)."""
    _require_execution(session, scope, execution_id)
    table = core_table(TaskRow)
    where = [table.c.execution_id == execution_id]
    if activity is not None:
        where.append(table.c.activity == activity)
    found, total = _page(session, select(table).where(*where).order_by(table.c.sequence),
                         limit, offset)
    return [_task_row(r._mapping) for r in found], total


def _task_row(row: Any) -> Row:
    out = dict(row)
    started, finished = out.get("started_at"), out.get("finished_at")
    out["duration"] = (finished - started).total_seconds() if started and finished else None
    return out


def full_task_id(execution_id: str, task: str) -> str:
    """A task id from what an operator types: the whole id or its number in the execution."""
    return f"{execution_id}.{task}" if task.isdigit() else task


def task(session: Session, scope: Scope, task_id: str) -> Row:
    """One task with its scripts' output and the facts about its target (DPOD's last page)."""
    table, runs = core_table(TaskRow), core_table(PlanExecutionRow)
    found = session.execute(
        select(table).join(runs, runs.c.id == table.c.execution_id)
        .where(table.c.id == task_id, _executions_in(scope))).first()
    if found is None:
        raise NotFound(f"no task {task_id!r}")
    out = _task_row(found._mapping)
    facts = core_table(TargetFactRow)
    out["facts"] = {r.name: r.value for r in session.execute(
        select(facts.c.name, facts.c.value).where(facts.c.task_id == task_id)
        .order_by(facts.c.name))}
    files = core_table(TaskFileRow)
    out["file_count"] = session.execute(
        select(func.count()).select_from(files).where(files.c.task_id == task_id)).scalar_one()
    return out


def files(session: Session, scope: Scope, task_id: str, *, limit: int = 0,
          offset: int = 0) -> tuple[list[Row], int]:
    """A task's files: path, size, checksum where known."""
    _require_task(session, scope, task_id)
    table = core_table(TaskFileRow)
    found, total = _page(session, select(table.c.path, table.c.size, table.c.checksum)
                         .where(table.c.task_id == task_id).order_by(table.c.id), limit, offset)
    return [dict(r._mapping) for r in found], total
