"""The executor's tables: the applied plans and targets, and the history of executions down to
each task's files and the facts plugins reported (migration ``0010_executor``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime
from shared.events import utcnow


class PlanRow(SQLModel, table=True):
    """A plan as last applied (``spec`` is the whole object, as written, by alias)."""

    __tablename__ = "executor_plans"

    name: str = Field(primary_key=True, max_length=128)
    reseller_id: str = Field(index=True, max_length=32)
    customer_id: str = Field(index=True, max_length=32)
    account_id: str = Field(index=True, max_length=32)
    job: str = Field(max_length=128)
    enabled: bool = True
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(default="", max_length=1000)
    digest: str = Field(max_length=64)
    generation: int = 1
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class TargetRow(SQLModel, table=True):
    __tablename__ = "executor_targets"

    name: str = Field(primary_key=True, max_length=128)
    address: str = Field(max_length=255)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(default="", max_length=1000)
    digest: str = Field(max_length=64)
    generation: int = 1
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PlanExecutionRow(SQLModel, table=True):
    __tablename__ = "executor_plan_executions"
    __table_args__ = (Index("ix_executor_plan_executions_plan_queued", "plan", "queued_at"),)

    id: str = Field(primary_key=True, max_length=32)
    plan: str = Field(max_length=128)
    reseller_id: str = Field(index=True, max_length=32)
    customer_id: str = Field(max_length=32)
    account_id: str = Field(max_length=32)
    runner: str = Field(default="", max_length=255)
    status: str = Field(index=True, max_length=16)
    status_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    queued_at: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    targets: int = 0
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    scripts: list[dict[str, Any]] = Field(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    removed: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class ActivityExecutionRow(SQLModel, table=True):
    __tablename__ = "executor_activity_executions"

    execution_id: str = Field(primary_key=True, max_length=32)
    activity: int = Field(primary_key=True)  # its index in the plan, from 0
    action: str = Field(max_length=128)
    target_pattern: str = Field(max_length=255)
    item_pattern: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=16)
    status_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class TaskRow(SQLModel, table=True):
    __tablename__ = "executor_tasks"
    __table_args__ = (Index("ix_executor_tasks_execution_sequence", "execution_id", "sequence"),)

    id: str = Field(primary_key=True, max_length=48)
    execution_id: str = Field(max_length=32)
    activity: int
    sequence: int
    target: str = Field(max_length=255)
    item: str = Field(max_length=1000)
    action: str = Field(max_length=128)
    status: str = Field(max_length=16)
    status_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    output_path: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    files_transferred: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    transfer_errors: int = 0
    bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    scripts: list[dict[str, Any]] = Field(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    removed: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class TaskFileRow(SQLModel, table=True):
    __tablename__ = "executor_task_files"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True, max_length=48)
    execution_id: str = Field(index=True, max_length=32)
    path: str = Field(sa_column=Column(Text, nullable=False))
    size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    checksum: str | None = Field(default=None, max_length=200)


class TargetFactRow(SQLModel, table=True):
    """What a plugin reported about a target during a task (tool versions, host OS…)."""

    __tablename__ = "executor_target_facts"

    task_id: str = Field(primary_key=True, max_length=48)
    name: str = Field(primary_key=True, max_length=128)
    execution_id: str = Field(index=True, max_length=32)
    target: str = Field(index=True, max_length=255)
    value: str = Field(sa_column=Column(Text, nullable=False))
    observed_at: datetime = Field(sa_type=UtcDateTime)
