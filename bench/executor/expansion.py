"""Expansion benchmark: 10,000 targets x 10 items into tasks (target: <= 1 s).

Two figures, each the median of five rounds:

* ``expand``: the pure step (match the activity's target pattern over the inventory, one task
  per target x item) given what discovery found;
* ``flow``: the plan flow's whole expansion phase, with a plugin that answers from memory:
  10,000 probes and discoveries as coroutines, the item pattern applied, then the tasks.

Run: ``python -m bench.executor.expansion [--targets N] [--items M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from services.executor.executions import PlanExecution
from services.executor.flow import PlanRun
from services.executor.plans.expansion import Found, expand, targets_of
from services.executor.plans.models import Inventory, Plan, Target
from services.executor.plugins.api import Action, ActionOptions, BackupResult, Item, Plugin
from services.executor.plugins.registry import PluginInfo, Registry
from services.executor.ports import ExecutionContext


class MemoryPlugin(Plugin):
    """Every target is reachable and holds ``count`` items ``db0``...; nothing is backed up."""

    name = "memory"
    actions = (Action(name="dump", summary="nothing", options=ActionOptions),)
    discovers = True

    def __init__(self, count: int) -> None:
        self.found = [Item(name=f"db{i}") for i in range(count)]

    async def probe(self, target: Any, action: str, options: Any) -> None:
        return None

    async def discover(self, target: Any, action: str, options: Any) -> list[Item]:
        return self.found

    async def backup(self, ctx: Any) -> BackupResult:
        return BackupResult()


def plan() -> Plan:
    return Plan.model_validate({
        "kind": "Plan", "metadata": {"name": "bench"},
        "spec": {"account": "R/C/A", "destination": {"path": "/tmp/bench"},
                 "activities": [{"action": "memory.dump", "targets": "host-*", "items": "db*"}]},
    })


def inventory(targets: int) -> Inventory:
    return Inventory([Target.model_validate({"metadata": {"name": f"host-{n:05d}"}})
                      for n in range(targets)])


def pure(the_plan: Plan, the_inventory: Inventory, items: int) -> tuple[float, int]:
    names = [f"db{i}" for i in range(items)]
    started = time.perf_counter()
    matched = targets_of(the_plan, the_inventory)
    found = {(0, name): Found(names) for name in matched[0]}
    tasks = sum(len(a.tasks) for a in expand(the_plan, matched, found, "bench"))
    return time.perf_counter() - started, tasks


def flow(the_plan: Plan, the_inventory: Inventory, items: int) -> tuple[float, int]:
    registry = Registry({"memory": PluginInfo("memory", "bench", "bench", "0",
                                              MemoryPlugin(items))})
    context = ExecutionContext(plugins=registry)
    run = PlanRun(the_plan, the_inventory, context,
                  PlanExecution("bench", the_plan.name, context.clock.now()))

    async def phase() -> int:
        return sum(len(a.tasks) for a in await run._expand())

    started = time.perf_counter()
    tasks = asyncio.run(phase())
    return time.perf_counter() - started, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    the_plan, the_inventory = plan(), inventory(args.targets)
    for name, measure in (("expand", pure), ("flow", flow)):
        times = []
        for _ in range(args.rounds):
            elapsed, tasks = measure(the_plan, the_inventory, args.items)
            assert tasks == args.targets * args.items, tasks
            times.append(elapsed)
        print(f"{name:6} {args.targets} targets x {args.items} items = {tasks} tasks: "
              f"median {statistics.median(times):.3f} s, best {min(times):.3f} s "
              f"(target <= 1 s)")


if __name__ == "__main__":
    main()
