"""Executor replicas for tests: real services on the test's nats-server and database, plans
applied as ``backstop plans apply`` does, and what they published read back from the streams."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlmodel import select

from services.executor import catalog
from services.executor.plans.files import load_text
from services.executor.plugins.registry import load
from services.executor.service import Executor
from services.executor.tables import PlanExecutionRow, TaskRow
from shared.bus import Bus
from shared.clock import Clock
from shared.config import ExecutorSettings
from shared.db import Database
from shared.events import Event, decode
from shared.runtime import Runtime
from tests.support import eventually


def apply(db: Database, text: str) -> None:
    declared = load_text(textwrap.dedent(text), "test.yaml")
    with db.session() as session:
        catalog.apply(session, declared, load())


@contextlib.asynccontextmanager
async def replica(nats_url: str, db: Database, clock: Clock | None = None,
                  **settings: Any) -> AsyncIterator[Executor]:
    """A running executor replica with its own NATS connection (``clock``: its scheduler's);
    stopped on exit."""
    bus = Bus(nats_url)
    await bus.connect(ensure_topology=False)
    config = ExecutorSettings(**{"executor_lease_seconds": 3.0,
                                 "executor_refresh_seconds": 0.5, **settings})
    runtime = Runtime(bus=bus, db=db)
    executor = Executor(config, runtime, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    await asyncio.wait_for(executor.started.wait(), 10)
    try:
        yield executor
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await bus.close()


def execution(db: Database, execution_id: str) -> PlanExecutionRow | None:
    with db.session() as session:
        row = session.get(PlanExecutionRow, execution_id)
        if row is not None:
            session.expunge(row)
        return row


async def ended(db: Database, execution_id: str, timeout: float = 30) -> PlanExecutionRow:
    """The execution once its status is final."""
    def done() -> PlanExecutionRow | None:
        row = execution(db, execution_id)
        return row if row is not None and row.status not in ("queued", "running") else None

    result: PlanExecutionRow = await eventually(done, timeout=timeout, interval=0.1)
    return result


def tasks(db: Database, execution_id: str) -> list[TaskRow]:
    with db.session() as session:
        rows = list(session.exec(select(TaskRow).where(TaskRow.execution_id == execution_id)))
        for row in rows:
            session.expunge(row)
        return rows


async def published(bus: Bus, subjects: str) -> list[Event]:
    """Every event stored so far under ``subjects`` (all streams' subjects are disjoint)."""
    stream = await bus.js.find_stream_name_by_subject(subjects)
    sub = await bus.js.pull_subscribe(subjects, stream=stream, config=ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL, inactive_threshold=30))
    events: list[Event] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(256, timeout=0.5)
            except TimeoutError:
                break
            events += [decode(m.data) for m in msgs]
            for m in msgs:
                await m.ack()
    finally:
        await sub.unsubscribe()
    return events
