"""Target leases: two replicas contending for one target never hold it at once; a holder that
dies (SIGKILL) frees it within the TTL; a lapsed lease is known to its old holder."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from services.executor.exclusion import LeaseLost, ReplicaTargetLocks, TargetLeases, target_key
from shared.bus import Bus
from tests.support import eventually


@pytest.fixture
async def second_bus(bus: Bus, nats_url: str) -> AsyncIterator[Bus]:
    """Another connection: the second replica."""
    other = Bus(nats_url)
    await other.connect(ensure_topology=False)
    yield other
    await other.close()


async def test_two_replicas_never_hold_one_target_at_once(bus: Bus, second_bus: Bus) -> None:
    replicas = [TargetLeases(bus, "replica-a", ttl=3, poll=0.01),
                TargetLeases(second_bus, "replica-b", ttl=3, poll=0.01)]
    holding: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    turns: dict[str, int] = {"replica-a": 0, "replica-b": 0}

    async def work(leases: TargetLeases) -> None:
        for _ in range(15):
            async with leases.hold("db-1") as lease:
                assert lease is not None
                holding.append(leases.owner)
                if len(holding) > 1:
                    overlaps.append(tuple(holding))
                turns[leases.owner] += 1
                await asyncio.sleep(0.01)
                holding.remove(leases.owner)
            await asyncio.sleep(0)

    await asyncio.gather(*(work(r) for r in replicas))
    assert overlaps == []
    assert turns == {"replica-a": 15, "replica-b": 15}
    assert await replicas[0].holder("db-1") is None  # released


async def test_different_targets_are_held_side_by_side(bus: Bus, second_bus: Bus) -> None:
    a, b = TargetLeases(bus, "a", ttl=3), TargetLeases(second_bus, "b", ttl=3)
    first = await a.try_take("web-1")
    second = await b.try_take("web-2")
    assert first is not None and second is not None
    assert await b.try_take("web-1") is None
    assert await a.holder("web-2") == "b"


async def test_a_held_lease_outlives_its_ttl_while_renewed(bus: Bus, second_bus: Bus) -> None:
    a, b = TargetLeases(bus, "a", ttl=3), TargetLeases(second_bus, "b", ttl=3)
    async with a.hold("nas") as lease:
        assert lease is not None
        await asyncio.sleep(4.5)  # one and a half TTLs: renewed meanwhile
        assert await b.try_take("nas") is None
        assert not lease.lost.is_set()
    assert await b.try_take("nas") is not None


async def test_a_lapsed_lease_cannot_be_renewed(bus: Bus, second_bus: Bus) -> None:
    a, b = TargetLeases(bus, "a", ttl=3), TargetLeases(second_bus, "b", ttl=3)
    lease = await a.try_take("vm-7")
    assert lease is not None
    taken = await eventually(lambda: b.try_take("vm-7"), timeout=6, interval=0.2)
    assert taken is not None
    with pytest.raises(LeaseLost):
        await a.renew(lease)
    assert lease.lost.is_set()
    await a.release(lease)  # not ours any more: leaves b's lease alone
    assert await b.holder("vm-7") == "b"


def test_keys_never_mix_up_target_names() -> None:
    names = ["db-1", "db.1", "db/1", "DB-1", "db 1", "ü"]
    assert len({target_key(n) for n in names}) == len(names)


async def test_a_killed_holder_frees_the_target_within_its_ttl(bus: Bus, nats_url: str) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from shared.bus import Bus
        from services.executor.exclusion import TargetLeases

        async def main():
            bus = Bus({nats_url!r})
            await bus.connect(ensure_topology=False)
            leases = TargetLeases(bus, "doomed", ttl=3)
            async with leases.hold("db-9"):
                print("held", flush=True)
                await asyncio.sleep(3600)

        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"held"
        leases = TargetLeases(bus, "survivor", ttl=3)
        await asyncio.sleep(4)  # renewed by the holder meanwhile
        assert await leases.holder("db-9") == "doomed"
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        killed = time.monotonic()
        lease = await asyncio.wait_for(leases.take("db-9"), timeout=10)
        assert lease is not None
        # Free once its last renewal's TTL ran out: at most a TTL (plus the server's timer).
        assert time.monotonic() - killed <= 3 + 1.5
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_a_replicas_consecutive_tasks_on_a_target_share_one_lease(
    bus: Bus, second_bus: Bus,
) -> None:
    locks = ReplicaTargetLocks(TargetLeases(bus, "a", ttl=3), linger=0.3)
    other = TargetLeases(second_bus, "b", ttl=3)
    revisions = []
    for n in range(3):
        async with locks.hold("db-1", f"task-{n}"):
            assert await other.try_take("db-1") is None
            revisions.append((await other.holder("db-1"), locks._held["db-1"].lease.revision))
    assert len(set(revisions)) == 1  # taken once, not released in between
    assert await other.holder("db-1") == "a"  # kept a moment for a next task…
    taken = await eventually(lambda: other.try_take("db-1"), timeout=3, interval=0.05)
    assert taken is not None  # …then released


async def test_tasks_of_one_replica_on_one_target_take_turns(bus: Bus) -> None:
    locks = ReplicaTargetLocks(TargetLeases(bus, "a", ttl=3), linger=0.1)
    inside: list[str] = []
    overlaps = 0

    async def task(name: str) -> None:
        nonlocal overlaps
        async with locks.hold("nas", name):
            inside.append(name)
            overlaps += len(inside) > 1
            await asyncio.sleep(0.05)
            inside.remove(name)

    await asyncio.gather(*(task(f"t{n}") for n in range(5)))
    assert overlaps == 0
    await locks.close()
    assert await TargetLeases(bus, "c", ttl=3).holder("nas") is None
