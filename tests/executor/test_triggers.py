"""Triggers over JetStream: ticks published by every replica are stored once and taken once, on
time; pinned plans reach only replicas with the labels; a full replica leaves work to others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from services.executor.triggers import (
    ScheduledPlan,
    Scheduler,
    manual_trigger,
    parse_labels,
    pin_label,
    replica_tokens,
    take_triggers,
)
from shared.bus import Bus
from shared.events import ANY_REPLICA, Event, PlanTriggered
from shared.schedules import Schedule
from shared.streams import EXECUTOR
from tests.executor.shifted_clock import TENANT, ShiftedClock
from tests.support import eventually


@pytest.fixture
async def other_bus(bus: Bus, nats_url: str) -> AsyncIterator[Bus]:
    other = Bus(nats_url)
    await other.connect(ensure_topology=False)
    yield other
    await other.close()


class Taker:
    """A replica's intake: what it took, and when."""

    def __init__(self, clock: ShiftedClock | None = None) -> None:
        self.taken: list[PlanTriggered] = []
        self.lateness: list[float] = []
        self.clock = clock

    async def handle(self, event: Event) -> None:
        assert isinstance(event, PlanTriggered)
        self.taken.append(event)
        if self.clock is not None and event.due_at is not None:
            self.lateness.append((self.clock.now() - event.due_at).total_seconds())


async def _run(*jobs: object) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(job) for job in jobs]  # type: ignore[arg-type]


async def _stop(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def test_a_tick_from_two_schedulers_runs_once_and_on_time(bus: Bus, other_bus: Bus) -> None:
    clock = ShiftedClock.before_next_minute(1.0)
    plans = [ScheduledPlan(f"plan-{n}", Schedule(cron="* * * * *"), TENANT) for n in range(3)]

    async def source() -> list[ScheduledPlan]:
        return plans

    stop = asyncio.Event()
    first, second = Taker(clock), Taker(clock)
    tasks = await _run(
        Scheduler(bus, source, clock=clock).run(stop),
        Scheduler(other_bus, source, clock=clock).run(stop),
        take_triggers(bus, {}, first.handle, stop),
        take_triggers(other_bus, {}, second.handle, stop),
    )
    try:
        await eventually(lambda: len(first.taken) + len(second.taken) >= 3, timeout=10)
        await asyncio.sleep(1.0)
        taken = first.taken + second.taken
        assert sorted(t.plan for t in taken) == ["plan-0", "plan-1", "plan-2"]
        assert all(t.reason == "schedule" and t.due_at is not None
                   and t.due_at.second == 0 for t in taken)
        # Both replicas published each tick; JetStream kept one of each, and each was taken.
        assert all(0 <= late < 1.0 for late in first.lateness + second.lateness)
        info = await bus.js.stream_info(EXECUTOR.name)
        assert info.state.messages == 0  # a work queue: taken and acked means gone
    finally:
        await _stop(stop, tasks)


async def test_a_pinned_plan_runs_only_on_a_replica_with_its_labels(
    bus: Bus, other_bus: Bus,
) -> None:
    stop = asyncio.Event()
    berlin, anywhere = Taker(), Taker()
    tasks = await _run(
        take_triggers(bus, parse_labels("site=berlin,disk=ssd"), berlin.handle, stop),
        take_triggers(other_bus, {}, anywhere.handle, stop),
    )
    try:
        for n in range(6):
            await bus.publish(manual_trigger(f"pinned-{n}", TENANT, pin_label({"site": "berlin"})))
        await bus.publish(manual_trigger("needs-both", TENANT,
                                         pin_label({"disk": "ssd", "site": "berlin"})))
        await bus.publish(manual_trigger("elsewhere", TENANT, pin_label({"site": "paris"})))
        await eventually(lambda: len(berlin.taken) >= 7, timeout=10)
        await asyncio.sleep(1.5)
        assert anywhere.taken == []
        assert {t.plan for t in berlin.taken} == {*(f"pinned-{n}" for n in range(6)),
                                                  "needs-both"}
        # Nobody may run the Paris plan: it waits in the stream for a replica that may.
        info = await bus.js.stream_info(EXECUTOR.name)
        assert info.state.messages == 1
    finally:
        await _stop(stop, tasks)


async def test_a_replica_without_room_leaves_triggers_to_another(
    bus: Bus, other_bus: Bus,
) -> None:
    stop = asyncio.Event()
    full, free = Taker(), Taker()

    async def never() -> bool:  # no room until the end
        await stop.wait()
        return False

    tasks = await _run(
        take_triggers(bus, {}, full.handle, stop, gate=never),
        take_triggers(other_bus, {}, free.handle, stop),
    )
    try:
        for n in range(5):
            await bus.publish(manual_trigger(f"p{n}", TENANT))
        await eventually(lambda: len(free.taken) == 5, timeout=10)
        assert full.taken == []
    finally:
        await _stop(stop, tasks)


async def test_a_changed_schedule_moves_the_next_tick(bus: Bus) -> None:
    plan = ScheduledPlan("nightly", Schedule(cron="0 2 * * *", timezone="Europe/Berlin"), TENANT)
    scheduler = Scheduler(bus, lambda: asyncio.sleep(0, [plan]))  # type: ignore[arg-type]
    scheduler.load([plan])
    first = scheduler.next_ticks["nightly"]
    assert first.astimezone(ZoneInfo("Europe/Berlin")).hour == 2
    moved = ScheduledPlan("nightly", Schedule(cron="0 3 * * *", timezone="Europe/Berlin"),
                          TENANT)
    scheduler.load([moved])
    assert scheduler.next_ticks["nightly"] - first == timedelta(hours=1)
    scheduler.load([])
    assert scheduler.next_ticks == {}


def test_replica_tokens_cover_every_subset_of_its_labels() -> None:
    tokens = replica_tokens({"site": "berlin", "disk": "ssd"})
    assert tokens[0] == ANY_REPLICA
    assert set(tokens) == {ANY_REPLICA, pin_label({"site": "berlin"}), pin_label({"disk": "ssd"}),
                           pin_label({"site": "berlin", "disk": "ssd"})}
    assert pin_label({}) == ANY_REPLICA
    with pytest.raises(ValueError, match="key=value"):
        parse_labels("berlin")
