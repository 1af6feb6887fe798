"""Missed runs: each scheduled occurrence must see a run start or finish by due + grace.

A run (its start or its end) satisfies the pending occurrence and moves the next one to the
first due time after it. When due + grace passes without one, that occurrence is missed, counted
once (the count and the next due time are stored together), and the next occurrence becomes
pending. A run still in progress at the deadline satisfies the occurrence: the too-long rule
speaks for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.evaluator.facts import JobFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook

KIND = "missed_run"
# A job down for months with an every-minute schedule must not stall catch-up: beyond this many
# misses in one pass the remaining occurrences are skipped in one jump (the count saturates).
MAX_CATCH_UP = 10_000


def grace(job: JobFacts, policies: PolicyBook) -> timedelta:
    seconds = policies.as_int("grace_seconds", job.tenant, job.name, job.from_schedule)
    return timedelta(seconds=seconds)


def deadline(job: JobFacts, policies: PolicyBook) -> datetime | None:
    if job.schedule is None or job.next_due_at is None:
        return None
    return job.next_due_at + grace(job, policies)


def on_activity(job: JobFacts, at: datetime) -> Transition | None:
    """A run started or finished at ``at``: the pending occurrence is satisfied."""
    if job.last_activity_at is None or at > job.last_activity_at:
        job.last_activity_at = at
    if job.schedule is not None:
        job.next_due_at = job.schedule.next_after(job.last_activity_at)
    job.consecutive_misses = 0
    return resolve(job, KIND, job=job.name, at=at,
                   summary=f"Backup job {job.name} ran again")


def on_schedule(job: JobFacts, now: datetime) -> None:
    """A new or changed schedule: the next due time counts from the last run, or from now."""
    assert job.schedule is not None
    start = max(job.last_activity_at, now) if job.last_activity_at else now
    job.next_due_at = job.schedule.next_after(start)


def on_deadline(job: JobFacts, now: datetime, policies: PolicyBook) -> Transition | None:
    """Count every occurrence whose due + grace has passed; fire when the streak is long enough."""
    if job.schedule is None or job.next_due_at is None:
        return None
    slack = grace(job, policies)
    missed_first: datetime | None = None
    counted = 0
    while job.next_due_at + slack <= now:
        if job.running_since is None:
            job.consecutive_misses += 1
            counted += 1
            missed_first = missed_first or job.next_due_at
        if counted >= MAX_CATCH_UP:
            job.next_due_at = job.schedule.next_after(now - slack)
            break
        job.next_due_at = job.schedule.next_after(job.next_due_at)
    tolerance = policies.as_int("missed_runs_tolerance", job.tenant, job.name, job.from_schedule)
    if not counted or job.consecutive_misses < tolerance:
        return None
    return fire(
        job, KIND, job=job.name, at=now, severity="error",
        summary=f"Backup job {job.name} missed {job.consecutive_misses} scheduled run(s)",
        details={"consecutive_misses": job.consecutive_misses, "tolerance": tolerance,
                 "schedule": job.schedule.describe(),
                 "first_missed_due": missed_first.isoformat() if missed_first else None,
                 "last_activity_at": job.last_activity_at.isoformat()
                 if job.last_activity_at else None},
    )
