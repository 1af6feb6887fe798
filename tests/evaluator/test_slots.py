"""Deadline work overtakes queued event batches."""

from __future__ import annotations

import asyncio

from services.evaluator.slots import PrioritySlots


async def test_urgent_waiters_go_first() -> None:
    slots = PrioritySlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def work(name: str, urgent: bool) -> None:
        async with slots.slot(urgent=urgent):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(work("first", False))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(work(f"batch{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    deadline = asyncio.create_task(work("deadline", True))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *queued, deadline)
    assert order == ["first", "deadline", "batch0", "batch1", "batch2"]


async def test_a_cancelled_waiter_does_not_lose_the_slot() -> None:
    slots = PrioritySlots(1)
    async with slots.slot():
        waiter = asyncio.create_task(slots.slot().__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
    async with asyncio.timeout(1):
        async with slots.slot():
            pass
