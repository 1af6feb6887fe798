"""The seams between the plan flow and the service around it.

The flow (:mod:`services.executor.flow`) runs one plan execution and talks to the world only
through these small interfaces, gathered in :class:`ExecutionContext`. Each has an in-process
implementation here (one executor, tests, benchmarks); the executor service supplies the
cross-replica ones (a shared lease per target, run events on the ingest stream, a durable
record of unquiesce intents, the global pause switch).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.executor.executions import PlanExecution, TaskExecution
from shared.clock import Clock, SystemClock


class TargetLocks(Protocol):
    """Exclusive use of a target: never two tasks on one target at once, whichever plan or
    replica runs them. ``hold`` waits until the target is free and keeps it until the block
    ends (also on error and cancellation)."""

    def hold(self, target: str, holder: str) -> AbstractAsyncContextManager[None]: ...


class ResultSink(Protocol):
    """Where results go as they happen (the service turns them into run events)."""

    async def plan_started(self, execution: PlanExecution) -> None: ...

    async def task_finished(self, execution: PlanExecution, task: TaskExecution) -> None: ...

    async def plan_finished(self, execution: PlanExecution) -> None: ...


class ExecutorSwitch(Protocol):
    """DPOD's "the system allows backups": no plan starts while paused."""

    async def paused(self) -> bool: ...


@dataclass(frozen=True)
class UnquiesceIntent:
    """A target (or one item of it) this executor is about to quiesce: recorded before the
    quiesce, cleared once the unquiesce is done, so a replica that finds one left behind by a
    dead executor can finish it."""

    execution_id: str
    task_id: str
    plan: str
    target: str
    action: str  # the activity's action: which plugin quiesced
    item: str | None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class UnquiesceIntents(Protocol):
    async def record(self, intent: UnquiesceIntent) -> None: ...

    async def clear(self, intent: UnquiesceIntent) -> None: ...


class HistoryRecorder(Protocol):
    """Keeps the execution's record (the database one: :mod:`services.executor.history`).

    Called in this order: ``started`` once (the execution and its activities and tasks as
    planned so far), ``expanded`` once tasks exist, ``task_changed`` at each task's status
    change, ``finished`` once (plan status final)."""

    async def started(self, execution: PlanExecution) -> None: ...

    async def expanded(self, execution: PlanExecution) -> None: ...

    async def task_changed(self, execution: PlanExecution, task: TaskExecution) -> None: ...

    async def finished(self, execution: PlanExecution) -> None: ...


# --- In-process implementations ----------------------------------------------------------------


class LocalTargetLocks:
    """Per-target exclusion inside one process (an ``asyncio.Lock`` per target name)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self.holders: dict[str, str] = {}

    @asynccontextmanager
    async def hold(self, target: str, holder: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            self.holders[target] = holder
            try:
                yield
            finally:
                self.holders.pop(target, None)


class CollectingSink:
    """Keeps what it is given (tests; a service with nowhere to publish)."""

    def __init__(self) -> None:
        self.started: list[PlanExecution] = []
        self.tasks: list[TaskExecution] = []
        self.finished: list[PlanExecution] = []

    async def plan_started(self, execution: PlanExecution) -> None:
        self.started.append(execution)

    async def task_finished(self, execution: PlanExecution, task: TaskExecution) -> None:
        self.tasks.append(task)

    async def plan_finished(self, execution: PlanExecution) -> None:
        self.finished.append(execution)


class FixedSwitch:
    """A pause switch set in process."""

    def __init__(self, paused: bool = False) -> None:
        self.is_paused = paused

    async def paused(self) -> bool:
        return self.is_paused


class MemoryIntents:
    """Unquiesce intents kept in memory: lost with the process (the service's are durable)."""

    def __init__(self) -> None:
        self.open: set[UnquiesceIntent] = set()

    async def record(self, intent: UnquiesceIntent) -> None:
        self.open.add(intent)

    async def clear(self, intent: UnquiesceIntent) -> None:
        self.open.discard(intent)


class NoHistory:
    """Records nothing (benchmarks; the caller keeps the returned execution)."""

    async def started(self, execution: PlanExecution) -> None:
        return None

    async def expanded(self, execution: PlanExecution) -> None:
        return None

    async def task_changed(self, execution: PlanExecution, task: TaskExecution) -> None:
        return None

    async def finished(self, execution: PlanExecution) -> None:
        return None


def default_runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ExecutionContext:
    """Everything a plan execution uses besides the plan and the inventory.

    ``plugins`` is the plugin registry (:mod:`services.executor.plugins.api`); ``parallel`` the
    most tasks run at once (on different targets), ``script_timeout`` the default seconds a plan
    or task script may run, ``output_limit`` the characters of a script's output kept."""

    plugins: Any
    locks: TargetLocks = field(default_factory=LocalTargetLocks)
    sink: ResultSink = field(default_factory=CollectingSink)
    switch: ExecutorSwitch = field(default_factory=FixedSwitch)
    intents: UnquiesceIntents = field(default_factory=MemoryIntents)
    history: HistoryRecorder = field(default_factory=NoHistory)
    clock: Clock = field(default_factory=SystemClock)
    parallel: int = 4
    script_timeout: float = 300.0
    output_limit: int = 64 * 1024
    runner: str = field(default_factory=default_runner)
