"""The evaluator's durable state: each job's and account's facts, every alert with its history,
the thresholds operators set, and which replica owns which partition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime
from shared.events import utcnow
from shared.tenancy import new_id


class JobState(SQLModel, table=True):
    __tablename__ = "job_states"

    job_id: str = Field(primary_key=True, foreign_key="jobs.id", max_length=32)
    account_id: str = Field(index=True, max_length=32)
    last_status: str | None = Field(default=None, max_length=16)
    last_run_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    consecutive_failures: int = 0
    # Added by 0004: what the engine needs to rebuild without touching other tables.
    partition: int = Field(default=0, index=True)
    reseller_id: str = Field(default="", max_length=32)
    customer_id: str = Field(default="", max_length=32)
    job_name: str = Field(default="", max_length=128)
    cron: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    interval_seconds: int | None = None
    schedule_settings: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    last_activity_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    consecutive_misses: int = 0
    next_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    running_run_id: str | None = Field(default=None, max_length=200)
    running_since: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AccountState(SQLModel, table=True):
    __tablename__ = "account_states"

    account_id: str = Field(primary_key=True, max_length=32)
    partition: int = Field(default=0, index=True)
    first_run_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    zero_bytes_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    quota_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Alert(SQLModel, table=True):
    """One alert per fingerprint (kind + subject); it fires and resolves many times."""

    __tablename__ = "alerts"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    fingerprint: str = Field(unique=True, max_length=64)
    kind: str = Field(max_length=32)
    reseller_id: str = Field(max_length=32)
    customer_id: str = Field(max_length=32)
    account_id: str = Field(index=True, max_length=32)
    job: str | None = Field(default=None, max_length=128)
    # A further subject within the account, e.g. the client name of an outdated client.
    key: str | None = Field(default=None, max_length=200)
    severity: str = Field(max_length=16)
    state: str = Field(max_length=16)
    sequence: int = 0
    summary: str = Field(max_length=1000)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_changed: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertTransition(SQLModel, table=True):
    """History: what was wrong, since when, and when it was fixed."""

    __tablename__ = "alert_transitions"
    __table_args__ = (UniqueConstraint("alert_id", "sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alerts.id", index=True, max_length=32)
    sequence: int
    state: str = Field(max_length=16)
    summary: str = Field(max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ThresholdOverride(SQLModel, table=True):
    """An operator's setting for a reseller, customer, account or job (``account/job``)."""

    __tablename__ = "evaluator_thresholds"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    scope_id: str = Field(max_length=200)
    name: str = Field(max_length=64)
    value: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ClientMinVersion(SQLModel, table=True):
    __tablename__ = "client_min_versions"

    client_name: str = Field(primary_key=True, max_length=100)
    min_version: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PartitionLease(SQLModel, table=True):
    """Which replica evaluates which account partition, until when."""

    __tablename__ = "evaluator_leases"

    partition: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    owner: str = Field(max_length=100)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class EvaluatorMember(SQLModel, table=True):
    """A live replica; the count of members decides each one's fair share of partitions."""

    __tablename__ = "evaluator_members"

    replica_id: str = Field(primary_key=True, max_length=100)
    expires_at: datetime = Field(sa_type=UtcDateTime)
