"""Versioned domain events: one definition shared by producers and consumers.

Every event travels in the same envelope (id, type, schema version, time, tenant path). The NATS
subject is derived from the event in one place (:meth:`Event.subject`) and ends with the tenant
path, so consumers can filter by reseller, customer or account and partition by account.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SUBJECT_ROOT = "backstop"
# Subject tokens must not contain NATS wildcards, separators or whitespace.
# fullmatch: "$" would also match before a final newline.
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


# --- what every consumer can compute with and store ----------------------------------------
# An event outside these ranges is refused when it is built or decoded (a dead letter), never
# met by a rule halfway through a transaction.

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Far enough for any report; near enough that a schedule's next occurrence or a deadline years
# later is still within datetime's range.
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_INT64 = 2**63 - 1  # BIGINT
MAX_INT32 = 2**31 - 1  # INTEGER
# The longest interval, grace or run time a schedule may set: ten years.
MAX_PERIOD_SECONDS = 10 * 366 * 86400


# Compared as instants (in pydantic-core, without a Python call on ingest's hot path): the year 1
# at +14:00 is refused, not overflowed. Ingest moves times to UTC; any offset works here.
Moment = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST)]
Count = Annotated[int, Field(ge=0, le=MAX_INT64)]
Period = Annotated[int, Field(ge=0, le=MAX_PERIOD_SECONDS)]
Tolerance = Annotated[int, Field(ge=1, le=MAX_INT32)]
# PostgreSQL text cannot hold NUL: text a consumer stores must not contain it.
_NO_NUL = r"^[^\x00]*$"
StoredText = Annotated[str, StringConstraints(pattern=_NO_NUL)]
JobName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_NUL)]
ClientText = Annotated[str, StringConstraints(max_length=100, pattern=_NO_NUL)]
RunId = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]


class UnknownEvent(ValueError):
    """The payload names an event type or schema version this build does not know."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    # 128 random bits as 32 hex digits, as uuid4().hex gave, without UUID's slow constructor
    # (a third of the cost of building an event on ingest's hot path).
    return secrets.token_hex(16)


class Tenant(BaseModel):
    """Where an event belongs: reseller → customer → account (ids, never names)."""

    model_config = ConfigDict(frozen=True)

    # As the database's id columns; the subject token check is in ``tokens``.
    reseller: Annotated[str, StringConstraints(max_length=32)]
    customer: Annotated[str, StringConstraints(max_length=32)]
    account: Annotated[str, StringConstraints(max_length=32)]

    def tokens(self) -> str:
        return self._tokens

    @cached_property
    def _tokens(self) -> str:
        # Checked once per tenant object: ingest's cached callers reuse theirs for every event.
        for token in (self.reseller, self.customer, self.account):
            if not _SUBJECT_TOKEN.fullmatch(token):
                raise ValueError(f"tenant id {token!r} is not a valid subject token")
        return f"{self.reseller}.{self.customer}.{self.account}"


class Event(BaseModel):
    """The common envelope. Subclasses set ``type``, ``schema_version`` and ``category``."""

    model_config = ConfigDict(extra="forbid")

    type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # First subject token after the root: which stream the event lives in.
    category: ClassVar[str]

    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=100)
    occurred_at: Moment = Field(default_factory=utcnow)
    tenant: Tenant

    _registry: ClassVar[dict[tuple[str, int], builtins.type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            Event._registry[(cls.type, cls.schema_version)] = cls

    @classmethod
    def subject_for(cls, tenant: Tenant) -> str:
        return f"{SUBJECT_ROOT}.{cls.category}.{cls.type}.v{cls.schema_version}.{tenant.tokens()}"

    @classmethod
    def subject_filter(cls, tenant_tokens: str = ">") -> str:
        """A subject filter for this event type, optionally narrowed to a tenant prefix."""
        return f"{SUBJECT_ROOT}.{cls.category}.{cls.type}.v{cls.schema_version}.{tenant_tokens}"

    def subject(self) -> str:
        return self.subject_for(self.tenant)

    def encode(self) -> bytes:
        # pydantic-core writes the JSON itself (about 4x faster than model_dump + json.dumps,
        # which matters on ingest's hot path); the envelope keys are spliced in front. Same
        # document as before, keys in another order. Every event has fields, so "{" is followed
        # by at least one member.
        return _envelope_head(self.type, self.schema_version) + self.model_dump_json().encode()[1:]


@cache
def _envelope_head(kind: str, schema_version: int) -> bytes:
    return f'{{"type":{json.dumps(kind)},"schema_version":{schema_version:d},'.encode()


def decode(payload: bytes) -> Event:
    """Parse a wire payload into its event class; raises :class:`UnknownEvent` or ``ValueError``."""
    try:
        body = json.loads(payload)
        key = (body.pop("type"), body.pop("schema_version"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnknownEvent(f"not an event envelope: {exc}") from exc
    cls = Event._registry.get(key)
    if cls is None:
        raise UnknownEvent(f"unknown event {key[0]!r} v{key[1]}")
    return cls.model_validate(body)


# --- events produced by ingest -------------------------------------------------------------

RunStatus = Literal["started", "success", "warning", "failure"]


class RunReported(Event):
    """A backup client reported a run (or its start)."""

    type: ClassVar[str] = "run"
    category: ClassVar[str] = "ingest"

    job: JobName
    status: RunStatus
    run_id: RunId | None = None
    started_at: Moment | None = None
    finished_at: Moment | None = None
    duration_seconds: Annotated[float, Field(
        ge=0, le=(LATEST - EARLIEST).total_seconds(), allow_inf_nan=False)] | None = None
    exit_code: Annotated[int, Field(ge=-MAX_INT32 - 1, le=MAX_INT32)] | None = None
    bytes_transferred: Count | None = None
    files_transferred: Count | None = None
    error_count: Count | None = None
    message: StoredText | None = None
    log_excerpt: str | None = None
    client_name: ClientText | None = None
    client_version: ClientText | None = None
    source: Literal["api", "ping"] = "api"


class RunLogged(Event):
    """A client sent a log message that changes no run state (Healthchecks' ``/log`` ping)."""

    type: ClassVar[str] = "log"
    category: ClassVar[str] = "ingest"

    job: JobName
    run_id: RunId | None = None
    log_excerpt: str | None = None
    source: Literal["api", "ping"] = "ping"


class ScheduleSet(Event):
    """A job's schedule was uploaded (cron + time zone, or a fixed interval)."""

    type: ClassVar[str] = "schedule"
    category: ClassVar[str] = "ingest"

    job: JobName
    cron: Annotated[str, StringConstraints(max_length=200)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=MAX_PERIOD_SECONDS)] | None = None
    grace_seconds: Period = 3600
    missed_runs_tolerance: Tolerance = 1
    failures_tolerance: Tolerance = 1
    max_runtime_seconds: Period | None = None


class UsageReported(Event):
    """Storage used by an account, optionally with its quota and a per-job breakdown."""

    type: ClassVar[str] = "usage"
    category: ClassVar[str] = "ingest"

    bytes_used: Count
    quota_bytes: Count | None = None
    jobs: dict[str, Count] = Field(default_factory=dict)


class HeartbeatReported(Event):
    """A backup client said it is alive, and which version it runs."""

    type: ClassVar[str] = "heartbeat"
    category: ClassVar[str] = "ingest"

    client_name: ClientText
    client_version: ClientText
    hostname: str | None = None
    os: str | None = None


# --- events produced by the evaluator ------------------------------------------------------

AlertState = Literal["firing", "resolved"]
Severity = Literal["critical", "error", "warning", "info"]


class AlertChanged(Event):
    """An alert changed state. ``sequence`` counts transitions of one fingerprint, so the pair
    (fingerprint, sequence) names one transition: the notifier's idempotency key."""

    type: ClassVar[str] = "alert"
    category: ClassVar[str] = "alert"

    fingerprint: str
    kind: str
    state: AlertState
    severity: Severity
    sequence: Count
    job: JobName | None = None
    summary: StoredText
    first_seen: Moment
    last_changed: Moment
    details: dict[str, Any] = Field(default_factory=dict)


# --- events of the executor ----------------------------------------------------------------

# A replica label: a subject token, so a trigger pinned to it reaches only replicas having it.
ReplicaLabel = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                                pattern=r"^[A-Za-z0-9_-]+$")]
# The label of triggers that any executor replica may take.
ANY_REPLICA = "any"


class PlanTriggered(Event):
    """A plan is to run: its schedule ticked, or someone asked (``backstop plans run``).

    The subject carries the replica label the plan is pinned to (``any`` when it is not)
    before the tenant path, so replicas take only the triggers meant for them.
    """

    type: ClassVar[str] = "trigger"
    category: ClassVar[str] = "executor"

    plan: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_NUL)]
    # The id its plan execution gets: the run events and the history carry it.
    execution_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    reason: Literal["schedule", "manual"]
    # The schedule's tick (reason "schedule"): how late the run starts is measured from it.
    due_at: Moment | None = None
    label: ReplicaLabel = ANY_REPLICA

    def subject(self) -> str:
        return self.subject_on(self.label, self.tenant)

    @classmethod
    def subject_on(cls, label: str, tenant: Tenant) -> str:
        return (f"{SUBJECT_ROOT}.{cls.category}.{cls.type}.v{cls.schema_version}."
                f"{label}.{tenant.tokens()}")

    @classmethod
    def label_filter(cls, label: str) -> str:
        """The subject filter of the triggers pinned to ``label`` (every tenant)."""
        return f"{SUBJECT_ROOT}.{cls.category}.{cls.type}.v{cls.schema_version}.{label}.>"


class ReportedTask(BaseModel):
    """One task's line in a plan report."""

    target: StoredText
    item: StoredText | None = None
    action: StoredText
    status: StoredText
    error: StoredText | None = None
    files: Count = 0
    bytes: Count = 0
    duration_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class PlanReported(Event):
    """A plan execution ended: the report its recipients get by e-mail (from the notifier)."""

    type: ClassVar[str] = "plan_report"
    category: ClassVar[str] = "report"

    plan: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_NUL)]
    execution_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    status: StoredText
    recipients: list[Annotated[str, StringConstraints(max_length=320, pattern=_NO_NUL)]]
    started_at: Moment | None = None
    finished_at: Moment | None = None
    error: StoredText | None = None
    succeeded: Count = 0
    failed: Count = 0
    skipped: Count = 0
    tasks: list[ReportedTask] = Field(default_factory=list)
