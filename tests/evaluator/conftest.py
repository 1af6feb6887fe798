"""Evaluator fixtures: a movable clock, and evaluators running on the real bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.evaluator.clock import FakeClock
from services.evaluator.service import Evaluator
from shared.bus import Bus
from shared.config import EvaluatorSettings
from shared.db import Database
from tests.evaluator.support import T0, StartEvaluator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def start_evaluator(bus: Bus) -> AsyncIterator[StartEvaluator]:
    """Start evaluator replicas in the background; all are stopped at the end of the test."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(db: Database, *, replica_id: str, **settings: Any) -> Evaluator:
        config = EvaluatorSettings(**{"evaluator_lease_seconds": 3.0,
                                      "evaluator_refresh_seconds": 0.5, **settings})
        evaluator = Evaluator(db, bus, config, replica_id=replica_id)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(evaluator.run(stop))))
        return evaluator

    yield start
    for stop, _ in running:
        stop.set()
    for _, task in running:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=15)
