"""``python -m bench.executor.overhead``: what the executor adds to the tool it drives (the
issue's performance item 1: at most 1.15 x the bare wall time).

A plan of 200 small rsync tasks — 20 local targets, 10 items each (folders of small files) —
run 4 at a time by the executor service as it runs in production: a trigger over NATS, the
execution queued and recorded in the history (SQLite), a JetStream lease per target, discovery
of each target's items, the plugin's rsync with its itemized output parsed into per-file
results, a run event per task and per plan. Against it, the same 200 ``rsync -a`` copies run
by ``xargs -P4``. Rounds alternate (each into a fresh destination, so every copy copies
everything); prints each round's wall and CPU time (the executor's process with its threads and
tools, against xargs with its rsyncs), the medians and their ratios. Verification is switched off in
the plan (it is a second, checksumming rsync per task, which the bare run does not do).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from services.executor import catalog
from services.executor.plans.files import load_text
from services.executor.plugins.registry import load
from services.executor.service import Executor
from services.executor.tables import PlanExecutionRow, PlanRow
from services.executor.triggers import manual_trigger
from shared.bus import Bus
from shared.config import ExecutorSettings
from shared.db import Database
from shared.events import Tenant
from shared.natsd import EmbeddedNats
from shared.runtime import Runtime
from shared.tenancy import create_account

TARGET_RATIO = 1.15
TARGETS, ITEMS, FILES, FILE_BYTES = 20, 10, 8, 2048


def make_source(root: Path) -> None:
    for item in range(ITEMS):
        folder = root / f"item{item}"
        folder.mkdir(parents=True)
        for n in range(FILES):
            (folder / f"f{n}.dat").write_bytes(bytes([item, n]) * (FILE_BYTES // 2))


def plan_text(source: Path, destination: Path) -> str:
    targets = "".join(f"kind: Target\nmetadata: {{name: t{n:02d}}}\n---\n" for n in range(TARGETS))
    return targets + f"""
kind: Plan
metadata: {{name: bench}}
spec:
  account: Bench/Bench/bench
  destination: {{path: '{destination}'}}
  parallel: 4
  activities:
    - action: rsync.sync
      targets: 't*'
      items: 'item*'
      verify: false
      options: {{source: '{source}/'}}
"""


def cpu() -> float:
    """CPU seconds (user + system) of this process, its threads and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare(source: Path, destination: Path) -> float:
    """The same copies, by xargs -P4: each item of each target into a folder of its own."""
    pairs = []
    for t in range(TARGETS):
        for item in range(ITEMS):
            target = destination / f"t{t:02d}" / f"item{item}"
            target.mkdir(parents=True)
            pairs += [f"{source}/item{item}/", f"{target}/"]
    started = time.perf_counter()
    subprocess.run(["xargs", "-0", "-P4", "-n2", "rsync", "-a"], input="\0".join(pairs).encode(),
                   check=True)
    return time.perf_counter() - started


async def through_executor(executor: Executor, db: Database, bus: Bus, source: Path,
                           destination: Path) -> tuple[float, str]:
    with db.session() as session:
        catalog.apply(session, load_text(plan_text(source, destination), "bench.yaml"),
                      executor.plugins)
        row = session.get(PlanRow, "bench")
        assert row is not None
        tenant = Tenant(reseller=row.reseller_id, customer=row.customer_id,
                        account=row.account_id)
    trigger = manual_trigger("bench", tenant)
    started = time.perf_counter()
    await bus.publish(trigger)
    # The replica's own task for the execution: awaited, not polled (polling the database
    # would compete with the execution for the CPU).
    while trigger.execution_id not in executor.running:  # noqa: ASYNC110 (milliseconds)
        await asyncio.sleep(0.001)
    await executor.running[trigger.execution_id]
    seconds = time.perf_counter() - started
    status = await db.run(lambda s: getattr(s.get(PlanExecutionRow, trigger.execution_id),
                                            "status", None))
    return seconds, str(status)


async def bench(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "src"
        make_source(source)
        server = EmbeddedNats(root / "nats")
        server.start()
        db = Database(f"sqlite:///{root / 'backstop.db'}")
        db.upgrade()
        with db.session() as session:
            create_account(session, reseller="Bench", customer="Bench", name="bench",
                           contacts=[])
        bus = Bus(server.url)
        await bus.connect()
        executor = Executor(ExecutorSettings(executor_refresh_seconds=3600),
                            Runtime(bus=bus, db=db), plugins=load())
        stop = asyncio.Event()
        running = asyncio.create_task(executor.run(stop))
        await executor.started.wait()
        times: dict[str, list[float]] = {"executor": [], "xargs": []}
        cpus: dict[str, list[float]] = {"executor": [], "xargs": []}
        try:
            for n in range(rounds):
                before = cpu()
                seconds, status = await through_executor(executor, db, bus, source,
                                                         root / f"exec{n}")
                cpus["executor"].append(cpu() - before)
                assert status == "succeeded", status
                copies = len(list((root / f"exec{n}").rglob("f0.dat")))
                assert copies == TARGETS * ITEMS, copies
                times["executor"].append(seconds)
                before = cpu()
                times["xargs"].append(await asyncio.to_thread(bare, source, root / f"bare{n}"))
                cpus["xargs"].append(cpu() - before)
                print(f"round {n + 1}: executor {times['executor'][-1]:.2f} s "
                      f"(CPU {cpus['executor'][-1]:.2f} s), xargs -P4 {times['xargs'][-1]:.2f} s "
                      f"(CPU {cpus['xargs'][-1]:.2f} s)")
                shutil.rmtree(root / f"exec{n}")
                shutil.rmtree(root / f"bare{n}")
        finally:
            stop.set()
            await running
            await bus.close()
            db.dispose()
            server.stop()
    executor_median = statistics.median(times["executor"])
    bare_median = statistics.median(times["xargs"])
    ratio = executor_median / bare_median
    cpu_ratio = statistics.median(cpus["executor"]) / statistics.median(cpus["xargs"])
    print(f"{TARGETS * ITEMS} rsync tasks over {TARGETS} targets, 4 in parallel: executor "
          f"{executor_median:.2f} s, xargs -P4 {bare_median:.2f} s (medians of {rounds}); "
          f"wall ratio {ratio:.2f} (target <= {TARGET_RATIO}: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); CPU ratio {cpu_ratio:.2f} "
          f"(the steadier figure on a shared machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(bench(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
