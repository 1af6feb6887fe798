"""The run history's tables: every run, a cell per job and day, usage per account and day.

Every row carries its tenant's ids (reseller, customer, account and, for runs and cells, job), so
a scoped read filters on the row itself and needs no join to find out whose it is.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Date, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime

# SQLite makes only "INTEGER PRIMARY KEY" an auto-increment alias of the row id.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class HistoryRun(SQLModel, table=True):
    """One run of a job. Reports with the same ``run_id`` (a start, then its end) are one row;
    a report without one is a run of its own (keyed by its event id)."""

    __tablename__ = "history_runs"
    __table_args__ = (
        UniqueConstraint("job_id", "run_key", name="uq_history_runs_job_run_key"),
        # The job page: newest first, keyset on (at, id).
        Index("ix_history_runs_job_at", "job_id", "at", "id"),
        # Retention: the oldest rows first.
        Index("ix_history_runs_at", "at"),
    )

    id: int | None = Field(default=None, sa_column=Column(ROW_ID, primary_key=True,
                                                          autoincrement=True))
    reseller_id: str = Field(max_length=32)
    customer_id: str = Field(max_length=32)
    account_id: str = Field(max_length=32)
    job_id: str = Field(max_length=32)
    # The client's run id, or "event:<event id>" for a report that named none.
    run_key: str = Field(max_length=210)
    run_id: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    # When the run happened (its start if known, else its end, else its first report): what
    # the run lists sort by, retention prunes by and the day cells count under.
    at: datetime = Field(sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    duration_seconds: float | None = None
    bytes_transferred: int | None = Field(default=None, sa_column=Column(BigInteger))
    files_transferred: int | None = Field(default=None, sa_column=Column(BigInteger))
    error_count: int | None = Field(default=None, sa_column=Column(BigInteger))
    exit_code: int | None = None
    message: str | None = Field(default=None, sa_column=Column(Text))
    log_excerpt: str | None = Field(default=None, sa_column=Column(Text))
    client_name: str | None = Field(default=None, max_length=100)
    client_version: str | None = Field(default=None, max_length=100)
    source: str = Field(default="api", max_length=8)
    # The latest report applied to this row (a later one of the same status wins).
    reported_at: datetime = Field(sa_type=UtcDateTime)


class HistoryDayCell(SQLModel, table=True):
    """A job's day (UTC): how its finished runs went and how often it missed a run. The 30-day
    strip reads 30 of these per job instead of every run."""

    __tablename__ = "history_day_cells"
    __table_args__ = (
        Index("ix_history_day_cells_account_day", "account_id", "day"),
        Index("ix_history_day_cells_day", "day"),
    )

    job_id: str = Field(primary_key=True, max_length=32)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    reseller_id: str = Field(max_length=32)
    customer_id: str = Field(max_length=32)
    account_id: str = Field(max_length=32)
    successes: int = 0
    failures: int = 0
    warnings: int = 0
    missed: int = 0
    bytes_transferred: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    duration_seconds: float = 0.0


class HistoryUsageDay(SQLModel, table=True):
    """An account's storage on a day (UTC): the day's last report wins."""

    __tablename__ = "history_usage_days"
    __table_args__ = (
        Index("ix_history_usage_days_reseller_day", "reseller_id", "day"),
        Index("ix_history_usage_days_day", "day"),
    )

    account_id: str = Field(primary_key=True, max_length=32)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    reseller_id: str = Field(max_length=32)
    customer_id: str = Field(max_length=32)
    bytes_used: int = Field(sa_column=Column(BigInteger, nullable=False))
    quota_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    reported_at: datetime = Field(sa_type=UtcDateTime)
