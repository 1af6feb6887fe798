"""The history in the database (SQLite and PostgreSQL): what an execution records down to each
task's files and target facts, the drill-down queries in a tenant's scope, keeping the last N
executions, interrupted executions, the read API over HTTP, and the service's task changes
written in batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select

from services.executor import catalog, drilldown, history
from services.executor.api import router
from services.executor.executions import PlanStatus
from services.executor.flow import execute, new_execution_id
from services.executor.history import DatabaseHistory
from services.executor.plans.files import load_text
from services.executor.ports import ExecutionContext
from services.executor.service import DeferredTaskHistory
from services.executor.tables import (
    PlanExecutionRow,
    TargetFactRow,
    TaskFileRow,
    TaskRow,
)
from shared.clock import FakeClock, SystemClock
from shared.db import Database, core_table
from shared.scopes import Scope
from shared.tenancy import IssuedAccount
from tests.executor.probe import Behaviour, plan_yaml, plugins
from tests.support import make_account

EVERYTHING = Scope.everything()


def applied(db: Database, dest: Path, activities: str, **kwargs: Any) -> IssuedAccount:
    issued = make_account(db, reseller="R", customer="C", name="A")
    declared = load_text(plan_yaml(dest, activities, **kwargs), "plan.yaml")
    with db.session() as session:
        catalog.apply(session, declared, plugins())
    return issued


async def run_plan(db: Database, behaviour: Behaviour | None = None, *, keep: int = 40,
                   clock: FakeClock | None = None, **kwargs: Any) -> Any:
    with db.session() as session:
        plan = catalog.load_plan(session, "p")
        inventory = catalog.inventory(session)
    ctx = ExecutionContext(plugins=plugins(behaviour), history=DatabaseHistory(db, keep),
                           clock=clock or SystemClock())
    return await execute(plan, inventory, ctx, **kwargs)


def count(db: Database, model: Any, **where: str) -> int:
    table = core_table(model)
    with db.session() as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return int(session.execute(query).scalar_one())


async def test_an_execution_is_recorded_down_to_files_and_facts(db: Database,
                                                                tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.unreachable = {"beta"}
    behaviour.items = {"alpha": ["DOMAIN1", "DOMAIN2"]}
    applied(db, tmp_path / "d", """\
        - action: probe.copy
          targets: '*'
          items: 'DOMAIN*'
          scripts: {pre: 'echo "before $BACKSTOP_ITEM"'}
        - {action: probe.copy, targets: 'qa*'}
        """, extra="scripts: {post: 'echo done'}")
    execution = await run_plan(db, behaviour)
    assert execution.status is PlanStatus.PARTIAL
    with db.session() as session:
        rows, total = drilldown.executions(session, EVERYTHING, "p")
        assert total == 1
        row = rows[0]
        assert (row["id"], row["status"], row["targets"], row["items"], row["succeeded"],
                row["failed"], row["skipped"]) == (execution.id, "partial", 2, 2, 2, 0, 2)
        assert row["scripts"][0]["output"] == "done\n"
        detail = drilldown.execution(session, EVERYTHING, execution.id)
        assert [(a["activity"], a["target_pattern"], a["item_pattern"], a["action"],
                 a["status"], a["succeeded"], a["failed"], a["skipped"])
                for a in detail["activities"]] == [
            (0, "*", "DOMAIN*", "probe.copy", "succeeded", 2, 0, 1),
            (1, "qa*", None, "probe.copy", "skipped", 0, 0, 1)]
        tasks, _ = drilldown.tasks(session, EVERYTHING, execution.id)
        assert [(t["sequence"], t["target"], t["item"], t["status"], t["error"])
                for t in tasks] == [
            (1, "alpha", "DOMAIN1", "succeeded", None),
            (2, "alpha", "DOMAIN2", "succeeded", None),
            (3, "beta", "DOMAIN*", "skipped", "beta does not answer"),
            (4, "qa*", "all", "skipped", "no target matches 'qa*'")]
        first = drilldown.task(session, EVERYTHING, drilldown.full_task_id(execution.id, "1"))
        assert first["files_transferred"] == 1 and first["bytes"] == 10
        assert first["duration"] is not None and first["duration"] >= 0
        assert first["facts"] == {"os": "test", "probe.version": "1.0"}
        assert first["scripts"][0]["output"] == "before DOMAIN1\n"
        assert first["output_path"].startswith(str(tmp_path / "d" / "alpha" / "probe.copy"
                                                   / "DOMAIN1"))
        files, total = drilldown.files(session, EVERYTHING, first["id"])
        assert (files, total) == ([{"path": "data.txt", "size": 6, "checksum": None}], 1)
        listed = drilldown.plans(session, EVERYTHING)
        assert [(p["name"], p["last_status"]) for p in listed] == [("p", "partial")]


async def test_the_drill_down_is_confined_to_the_tenant(db: Database, tmp_path: Path) -> None:
    issued = applied(db, tmp_path / "d", "- {action: probe.copy, targets: 'alpha'}")
    execution = await run_plan(db)
    task_id = execution.tasks[0].id
    own = Scope.of_customer(issued.reseller.id, issued.customer.id)
    other = Scope.of_reseller("another-reseller")
    with db.session() as session:
        assert drilldown.execution(session, own, execution.id)["id"] == execution.id
        assert drilldown.files(session, own, task_id)[1] == 1
        assert drilldown.plans(session, other) == []
        for read in (lambda: drilldown.plan(session, other, "p"),
                     lambda: drilldown.executions(session, other, "p"),
                     lambda: drilldown.execution(session, other, execution.id),
                     lambda: drilldown.tasks(session, other, execution.id),
                     lambda: drilldown.task(session, other, task_id),
                     lambda: drilldown.files(session, other, task_id)):
            with pytest.raises(drilldown.NotFound):
                read()


async def test_only_the_last_executions_are_kept(db: Database, tmp_path: Path) -> None:
    applied(db, tmp_path / "d", "- {action: probe.copy, targets: '*'}")
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=UTC))
    ids = []
    for _ in range(5):
        ids.append((await run_plan(db, keep=3, clock=clock)).id)
        clock.advance(3600)
    with db.session() as session:
        rows, total = drilldown.executions(session, EVERYTHING, "p")
    assert total == 3 and [r["id"] for r in rows] == ids[:1:-1]
    for gone in ids[:2]:
        for model in (TaskRow, TaskFileRow, TargetFactRow):
            assert count(db, model, execution_id=gone) == 0
    assert count(db, TaskFileRow) == 3 * 2


async def test_a_queued_execution_keeps_its_queue_time_and_a_dead_runner_is_interrupted(
        db: Database, tmp_path: Path) -> None:
    applied(db, tmp_path / "d", "- {action: probe.copy, targets: '*'}")
    queued_at = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    waiting = new_execution_id()
    with db.session() as session:
        history.queue(session, waiting, "p", queued_at)
    execution = await run_plan(db, execution_id=waiting, queued_at=queued_at)
    with db.session() as session:
        row = drilldown.execution(session, EVERYTHING, waiting)
    assert row["status"] == "succeeded" and row["queued_at"] == queued_at
    assert row["started_at"] >= execution.started_at - timedelta(seconds=1)
    # A replica that died leaves its executions queued or running: ended as interrupted.
    stuck = new_execution_id()
    with db.session() as session:
        history.queue(session, stuck, "p", queued_at, runner="replica-1")
        session.flush()
        assert history.interrupt(session, runner="replica-2") == 0
        assert history.interrupt(session, runner="replica-1") == 1
    with db.session() as session:
        row = drilldown.execution(session, EVERYTHING, stuck)
    assert row["status"] == "interrupted"
    assert row["error"] == "interrupted: its executor stopped"


async def test_a_cancelled_execution_is_recorded_as_interrupted(db: Database,
                                                                tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.backup_seconds = 30
    applied(db, tmp_path / "d", "- {action: probe.copy, targets: 'alpha'}")
    running = asyncio.create_task(run_plan(db, behaviour))
    await asyncio.wait_for(behaviour.backing_up.wait(), 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    with db.session() as session:
        rows, _ = drilldown.executions(session, EVERYTHING, "p")
        tasks, _ = drilldown.tasks(session, EVERYTHING, rows[0]["id"])
    assert rows[0]["status"] == "interrupted"
    assert [t["status"] for t in tasks] == ["interrupted"]
    assert count(db, PlanExecutionRow, status="running") == 0


async def test_the_read_api_serves_the_drill_down_in_scope(db: Database, tmp_path: Path) -> None:
    issued = applied(db, tmp_path / "d", "- {action: probe.copy, targets: '*'}")
    execution = await run_plan(db)

    def scope_of(request: Request) -> Scope:
        reseller = request.headers.get("x-reseller")
        return Scope.of_reseller(reseller) if reseller else EVERYTHING

    app = FastAPI()
    app.include_router(router(db, scope_of))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        plans = (await client.get("/executor/plans")).json()
        assert [p["name"] for p in plans["items"]] == ["p"]
        runs = (await client.get("/executor/plans/p/executions")).json()
        assert runs["total"] == 1 and runs["items"][0]["id"] == execution.id
        detail = (await client.get(f"/executor/executions/{execution.id}")).json()
        assert detail["activities"][0]["succeeded"] == 2
        tasks = (await client.get(f"/executor/executions/{execution.id}/tasks?limit=1")).json()
        assert tasks["total"] == 2 and len(tasks["items"]) == 1
        task_id = tasks["items"][0]["id"]
        assert (await client.get(f"/executor/tasks/{task_id}")).json()["facts"]["os"] == "test"
        files = (await client.get(f"/executor/tasks/{task_id}/files")).json()
        assert files["items"] == [{"path": "data.txt", "size": 6, "checksum": None}]
        mine = {"x-reseller": issued.reseller.id}
        assert (await client.get(f"/executor/tasks/{task_id}", headers=mine)).status_code == 200
        theirs = {"x-reseller": "another"}
        answer = await client.get(f"/executor/executions/{execution.id}", headers=theirs)
        assert answer.status_code == 404
        assert answer.json() == {"detail": f"no execution {execution.id!r}"}
        assert (await client.get("/executor/plans/nope/executions")).status_code == 404


def test_the_migration_makes_the_tables_the_models_describe(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    ours = [d for d in diffs if "executor_" in repr(d)]
    assert ours == []


class CountedHistory(DatabaseHistory):
    """The database history, counting the writes of task changes and the changes in them."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.writes: list[int] = []

    async def tasks_changed(self, changes: Any) -> None:
        self.writes.append(len(changes))
        await super().tasks_changed(changes)


async def test_task_changes_gathered_by_the_service_are_written_together(
        db: Database, tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.items = {"alpha": [f"D{n}" for n in range(6)], "beta": ["D0", "D1"]}
    applied(db, tmp_path / "d", """\
        - action: probe.copy
          targets: '*'
          items: 'D*'
        """)
    with db.session() as session:
        plan = catalog.load_plan(session, "p")
        inventory = catalog.inventory(session)
    inner = CountedHistory(db)
    ctx = ExecutionContext(plugins=plugins(behaviour), history=DeferredTaskHistory(inner))
    execution = await execute(plan, inventory, ctx)
    assert execution.status is PlanStatus.SUCCEEDED
    # 8 tasks, each running then succeeded: 16 changes, in fewer writes (and none lost).
    assert sum(inner.writes) <= 16 and len(inner.writes) < 16
    assert max(inner.writes) > 1
    with db.session() as session:
        tasks, total = drilldown.tasks(session, EVERYTHING, execution.id)
        assert total == 8 and {t["status"] for t in tasks} == {"succeeded"}
        rows, _ = drilldown.executions(session, EVERYTHING, "p")
        assert (rows[0]["status"], rows[0]["succeeded"]) == ("succeeded", 8)
    assert count(db, TaskFileRow, execution_id=execution.id) == 8
    assert count(db, TargetFactRow, execution_id=execution.id) == 16
