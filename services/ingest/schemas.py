"""What clients may send: request bodies, validated strictly (unknown fields are refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from services.ingest.cron import check_cron, check_timezone
from shared.events import EARLIEST, MAX_INT64
from shared.tenancy import JOB_NAME_PATTERN, check_job_name

# Clocks drift; a report from further ahead than this is a bug or a lie.
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_BATCH = 500
# PostgreSQL text cannot hold NUL; the consumers store these fields.
NO_NUL = r"^[^\x00]*$"
# Client names and versions are identifiers shown in e-mail subjects and tables: one line.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"

# Checked by the one job-name check the ping URLs use too; the schema documents the same rule.
JobName = Annotated[str, AfterValidator(check_job_name), WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": JOB_NAME_PATTERN})]
# Counters end up in BIGINT columns downstream.
Counter = Annotated[int, Field(ge=0, le=MAX_INT64)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL)]


_BEFORE_ALL, _AFTER_ALL = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _sane_time(value: datetime | None) -> datetime | None:
    """An aware time from 2000 on and not in the future, moved to UTC: what the consumers
    compute with. The year 1 at +14:00, say, has no UTC time at all."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone offset (e.g. 'Z' or '+01:00')")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # the calendar's first or last day moved past its end
        utc = _BEFORE_ALL if value.year == 1 else _AFTER_ALL
    if utc < EARLIEST:
        raise ValueError(f"timestamp is before {EARLIEST:%Y-%m-%d} (UTC): check the client's clock")
    if utc - datetime.now(UTC) > MAX_CLOCK_SKEW:
        raise ValueError("timestamp is in the future")
    return utc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunReport(Strict):
    """One run of a backup job, or its start (``status: started``; a later report with the same
    ``run_id`` completes it)."""

    job: JobName
    status: Literal["started", "success", "warning", "failure"]
    run_id: str | None = Field(None, min_length=1, max_length=100, pattern=NO_NUL)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = Field(None, ge=0, le=366 * 86400, allow_inf_nan=False)
    exit_code: int | None = Field(None, ge=-1, le=255)
    bytes_transferred: Counter | None = None
    files_transferred: Counter | None = None
    error_count: Counter | None = None
    message: str | None = Field(None, max_length=2000, pattern=NO_NUL)
    log_excerpt: str | None = Field(
        None, description="The run's log; a long one is kept cut, with a marker, not refused."
    )
    client_name: ShortText | None = None
    client_version: ShortText | None = None

    _check_times = field_validator("started_at", "finished_at")(_sane_time)

    @model_validator(mode="after")
    def _consistent(self) -> RunReport:
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        if self.status == "started" and self.finished_at is not None:
            raise ValueError("a 'started' report cannot have finished_at")
        return self


class RunBatch(Strict):
    """Reports a client kept while offline. Each item is validated and stored on its own."""

    # Items are checked one by one (see runs.py), so one malformed item spoils nothing else.
    runs: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH,
        json_schema_extra={"items": {"$ref": "#/components/schemas/RunReport"}},
    )


class FieldProblem(BaseModel):
    field: str
    message: str


class BatchItemResult(BaseModel):
    index: int
    status: Literal["stored", "duplicate", "invalid", "unavailable"]
    event_id: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class BatchResult(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class ScheduleRequest(Strict):
    """When a job should run: ``cron`` (+ ``timezone``, default UTC) or ``interval_seconds``."""

    cron: str | None = Field(None, min_length=1, max_length=200, examples=["0 3 * * *"])
    timezone: str | None = Field(None, min_length=1, max_length=64, examples=["Europe/Berlin"])
    interval_seconds: int | None = Field(None, ge=60, le=366 * 86400)
    grace_seconds: int = Field(3600, ge=0, le=30 * 86400)
    missed_runs_tolerance: int = Field(1, ge=1, le=1000)
    failures_tolerance: int = Field(1, ge=1, le=1000)
    max_runtime_seconds: int | None = Field(None, ge=1, le=30 * 86400)

    _cron = field_validator("cron")(check_cron)
    _zone = field_validator("timezone")(check_timezone)

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleRequest:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give either cron (with timezone) or interval_seconds")
        if self.timezone is not None and self.cron is None:
            raise ValueError("timezone only applies to a cron schedule")
        if self.cron is not None and self.timezone is None:
            self.timezone = "UTC"
        return self


class UsageReport(Strict):
    bytes_used: Counter
    quota_bytes: Counter | None = Field(None, description="Defaults to the account's quota.")
    jobs: dict[JobName, Counter] = Field(default_factory=dict, max_length=10_000)


class HeartbeatReport(Strict):
    client_name: ShortText
    client_version: ShortText
    hostname: str | None = Field(None, min_length=1, max_length=253)
    os: str | None = Field(None, min_length=1, max_length=200)


class Accepted(BaseModel):
    event_id: str
    duplicate: bool = False
