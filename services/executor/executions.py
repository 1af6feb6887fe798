"""What one run of a plan did: the plan execution, its activity executions and their tasks.

Plain mutable records the flow fills in as it goes; the history recorder stores them, the result
sink publishes them. Statuses are strings (``StrEnum``), stored and published as they read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

WHOLE = "all"  # the item of a task covering the whole target


class PlanStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every task succeeded
    PARTIAL = "partial"  # no task failed, some were skipped (unreachable target, no match)
    FAILED = "failed"  # at least one task failed
    SKIPPED = "skipped"  # every task was skipped: nothing ran
    STOPPED = "stopped"  # a check or the pre-plan script stopped it before any task ran
    INTERRUPTED = "interrupted"  # its executor died while it ran

    @property
    def final(self) -> bool:
        return self not in (PlanStatus.QUEUED, PlanStatus.RUNNING)


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)


@dataclass
class ScriptRun:
    """One script's run: its exit status (None: it timed out or could not start) and output."""

    name: str  # pre_plan, post_plan, pre_task, post_task
    command: str
    exit_code: int | None
    output: str
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class FileRecord:
    """A file a task wrote (or changed) at its destination."""

    path: str
    size: int | None = None
    checksum: str | None = None


@dataclass(slots=True)
class TaskExecution:
    id: str
    activity_index: int
    sequence: int  # order of creation = order of execution
    target: str
    item: str  # "all": the whole target
    action: str
    status: TaskStatus = TaskStatus.PENDING
    status_at: datetime | None = None
    error: str | None = None
    output_path: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_transferred: int = 0
    transfer_errors: int = 0
    bytes: int = 0
    files: list[FileRecord] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    scripts: list[ScriptRun] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # backups retention removed
    # False for the skipped task standing for a target pattern that matched nothing, or for an
    # item pattern nothing matched (or that could not be looked for): not counted.
    target_known: bool = True
    item_known: bool = True

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class ActivityExecution:
    index: int
    action: str
    target_pattern: str
    item_pattern: str | None
    status: TaskStatus = TaskStatus.PENDING
    status_at: datetime | None = None
    tasks: list[TaskExecution] = field(default_factory=list)

    def counts(self) -> dict[TaskStatus, int]:
        return _counts(self.tasks)

    def settle(self, now: datetime) -> None:
        """The activity's status from its tasks': failed if one failed, skipped if all were."""
        counts = self.counts()
        if counts[TaskStatus.RUNNING]:
            status = TaskStatus.RUNNING
        elif counts[TaskStatus.PENDING]:
            status = TaskStatus.RUNNING if any(t.status.final for t in self.tasks) \
                else TaskStatus.PENDING
        elif counts[TaskStatus.FAILED] or counts[TaskStatus.INTERRUPTED]:
            status = TaskStatus.FAILED
        elif counts[TaskStatus.SUCCEEDED]:
            status = TaskStatus.SUCCEEDED
        else:
            status = TaskStatus.SKIPPED
        if status != self.status:
            self.status, self.status_at = status, now


@dataclass
class PlanExecution:
    id: str
    plan: str
    queued_at: datetime
    runner: str = ""
    status: PlanStatus = PlanStatus.QUEUED
    status_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    activities: list[ActivityExecution] = field(default_factory=list)
    scripts: list[ScriptRun] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # backups removed to make room

    @property
    def tasks(self) -> list[TaskExecution]:
        return [task for activity in self.activities for task in activity.tasks]

    def counts(self) -> dict[TaskStatus, int]:
        return _counts(self.tasks)

    @property
    def target_count(self) -> int:
        """Targets the plan was to back up (DPOD's "devices"), failed and skipped included."""
        return len({t.target for t in self.tasks if t.target_known})

    @property
    def item_count(self) -> int:
        """Items found to back up (DPOD's "domains"); whole-target tasks count none."""
        return len({(t.target, t.item) for t in self.tasks if t.item_known and t.item != WHOLE})


def _counts(tasks: list[TaskExecution]) -> dict[TaskStatus, int]:
    out = dict.fromkeys(TaskStatus, 0)
    for task in tasks:
        out[task.status] += 1
    return out
