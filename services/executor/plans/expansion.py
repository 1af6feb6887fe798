"""From activities to tasks (DPOD's step 5): one task per matched target x item, in activity
order; a target that cannot be reached gives one skipped task with the reason, a pattern that
matches nothing gives one skipped task saying so.

Expansion itself is pure and fast (10,000 targets x 10 items in well under a second, see
``bench/executor/expansion.py``): the flow probes targets and discovers their items first, and
hands the findings in as :class:`Found` per activity and target.
"""

from __future__ import annotations

import fnmatch
import gc
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from services.executor.executions import WHOLE, ActivityExecution, TaskExecution, TaskStatus
from services.executor.plans.models import Inventory, Plan


@dataclass(frozen=True, slots=True)
class Found:
    """What probing and discovery found for one activity on one target: the names of the items
    to back up, or why there are none (``reason``; ``failed`` when that is an error of the
    executor's side, such as a plugin that is not installed, rather than the target's)."""

    items: Sequence[str] = ()
    reason: str | None = None
    failed: bool = False


@lru_cache(maxsize=1024)
def matcher(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A case-sensitive glob (``db-*``, ``web-[0-9]``) as a compiled match."""
    return re.compile(fnmatch.translate(pattern)).match


def matching(pattern: str, names: Iterable[str]) -> list[str]:
    match = matcher(pattern)
    return [name for name in names if match(name)]


def targets_of(plan: Plan, inventory: Inventory) -> list[list[str]]:
    """The targets each activity matches, in inventory order."""
    names = list(inventory.targets)
    return [matching(activity.targets, names) for activity in plan.spec.activities]


def expand(plan: Plan, matched: Sequence[Sequence[str]], found: Mapping[tuple[int, str], Found],
           execution_id: str, now: datetime | None = None) -> list[ActivityExecution]:
    """The activity executions with their tasks, numbered in creation order; task ids are
    ``<execution id>.<number>``; tasks skipped (or failed) here get ``now`` as status time."""
    # 100,000 new objects would run the cyclic garbage collector dozens of times over an
    # ever larger young generation (most of the time spent); none of them is garbage yet.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _expand(plan, matched, found, execution_id, now)
    finally:
        if collecting:
            gc.enable()


def _expand(plan: Plan, matched: Sequence[Sequence[str]], found: Mapping[tuple[int, str], Found],
            execution_id: str, now: datetime | None) -> list[ActivityExecution]:
    out: list[ActivityExecution] = []
    sequence = 0
    skipped, failed = TaskStatus.SKIPPED, TaskStatus.FAILED
    for index, activity in enumerate(plan.spec.activities):
        action, item_pattern = activity.action, activity.items
        tasks: list[TaskExecution] = []
        run = ActivityExecution(index, action, activity.targets, item_pattern, tasks=tasks)
        out.append(run)
        targets = matched[index]
        if not targets:
            sequence += 1
            tasks.append(TaskExecution(
                f"{execution_id}.{sequence}", index, sequence, activity.targets,
                item_pattern or WHOLE, action, status=skipped, status_at=now,
                error=f"no target matches {activity.targets!r}", target_known=False,
                item_known=False))
            continue
        for target in targets:
            result = found.get((index, target))
            if result is None or result.reason is not None:
                sequence += 1
                tasks.append(TaskExecution(
                    f"{execution_id}.{sequence}", index, sequence, target, item_pattern or WHOLE,
                    action, status=failed if result is not None and result.failed else skipped,
                    status_at=now, item_known=item_pattern is None,
                    error=result.reason if result is not None else "target not probed"))
                continue
            if not result.items:
                sequence += 1
                tasks.append(TaskExecution(
                    f"{execution_id}.{sequence}", index, sequence, target, item_pattern or WHOLE,
                    action, status=skipped, status_at=now, item_known=False,
                    error=f"no item of {target} matches {item_pattern!r}"))
                continue
            for item in result.items:
                sequence += 1
                tasks.append(TaskExecution(f"{execution_id}.{sequence}", index, sequence, target,
                                           item, action))
    return out
