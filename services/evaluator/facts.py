"""What the evaluator knows about each job and account: plain data the rules read and update.

The partition that owns an account keeps these in memory; the store writes the changed ones back
in the same transaction as the events that changed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.evaluator.policies import Value
from shared.events import Severity, Tenant
from shared.schedules import Schedule

JobKey = tuple[str, str]  # (account id, job name)
Action = Literal["fire", "resolve"]


@dataclass(slots=True)
class JobFacts:
    tenant: Tenant
    name: str
    job_id: str | None = None  # the jobs table's id, once stored
    schedule: Schedule | None = None
    # Settings the client sent with its schedule (only those that differ from the defaults).
    from_schedule: dict[str, Value] = field(default_factory=dict)
    last_status: str | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    # The latest start or finish seen: what satisfies a due run.
    last_activity_at: datetime | None = None
    consecutive_failures: int = 0
    consecutive_misses: int = 0
    # The earliest occurrence not yet satisfied or counted as missed.
    next_due_at: datetime | None = None
    running_run_id: str | None = None
    running_since: datetime | None = None
    firing: set[str] = field(default_factory=set)

    @property
    def key(self) -> JobKey:
        return (self.tenant.account, self.name)


@dataclass(slots=True)
class AccountFacts:
    tenant: Tenant
    created_at: datetime
    quota_bytes: int | None = None
    first_run_at: datetime | None = None
    # Since when every successful run transferred zero bytes (None: the last one moved data).
    zero_bytes_since: datetime | None = None
    # Firing account-level alerts, by kind or "kind:key" (outdated clients are per client).
    firing: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule's verdict: fire or resolve one alert. The store turns it into rows and an event."""

    action: Action
    kind: str
    tenant: Tenant
    at: datetime
    summary: str
    severity: Severity = "warning"
    job: str | None = None
    key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def label(kind: str, key: str | None = None) -> str:
    """How ``firing`` names an alert: its kind, and its key where one kind has several (outdated
    clients are per client)."""
    return f"{kind}:{key}" if key else kind


def fire(facts: JobFacts | AccountFacts, kind: str, **kwargs: Any) -> Transition | None:
    """Mark ``kind`` firing on ``facts``; None when it already fires (nothing to announce)."""
    return _turn(facts, "fire", kind, kwargs)


def resolve(facts: JobFacts | AccountFacts, kind: str, **kwargs: Any) -> Transition | None:
    """Mark ``kind`` resolved on ``facts``; None when it does not fire."""
    return _turn(facts, "resolve", kind, kwargs)


def _turn(facts: JobFacts | AccountFacts, action: Action, kind: str,
          fields: dict[str, Any]) -> Transition | None:
    name = label(kind, fields.get("key"))
    if (name in facts.firing) == (action == "fire"):
        return None
    if action == "fire":
        facts.firing.add(name)
    else:
        facts.firing.discard(name)
    return Transition(action, kind, facts.tenant, **fields)
