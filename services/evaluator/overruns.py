"""Runs too long or never finished: a started run must complete within the job's maximum run
time; without one, within the schedule's period; without a schedule either, within
``unscheduled_max_runtime_seconds`` (a day by default, so a run that never finishes is not
silent just because nobody said how long it may take)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.evaluator.facts import JobFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook, Source, Value
from shared.events import Tenant

KIND = "run_too_long"


@dataclass(frozen=True)
class Bound:
    """What limits a started run: ``seconds`` from the threshold ``setting``, in force at
    ``source``; or, when ``setting`` is None, the schedule's period."""

    setting: str | None
    seconds: int = 0
    source: Source | None = None


SCHEDULE_PERIOD = Bound(setting=None)


def bound(policies: PolicyBook, tenant: Tenant, job: str | None, *, scheduled: bool,
          from_schedule: Mapping[str, Value] | None = None) -> Bound | None:
    """The bound on a run of ``job``; None when a run may take forever (nothing will page)."""
    seconds, source = policies.resolve("max_runtime_seconds", tenant, job, from_schedule)
    if int(seconds) > 0:
        return Bound("max_runtime_seconds", int(seconds), source)
    if scheduled:
        return SCHEDULE_PERIOD
    seconds, source = policies.resolve("unscheduled_max_runtime_seconds", tenant, job)
    if int(seconds) > 0:
        return Bound("unscheduled_max_runtime_seconds", int(seconds), source)
    return None


def limit(job: JobFacts, policies: PolicyBook) -> timedelta | None:
    found = bound(policies, job.tenant, job.name, scheduled=job.schedule is not None,
                  from_schedule=job.from_schedule)
    if found is None:
        return None
    if found.setting is not None:
        return timedelta(seconds=found.seconds)
    if job.schedule is not None and job.running_since is not None:
        return job.schedule.period_after(job.running_since)
    return None


def deadline(job: JobFacts, policies: PolicyBook) -> datetime | None:
    if job.running_since is None or KIND in job.firing:
        return None
    allowed = limit(job, policies)
    return job.running_since + allowed if allowed is not None else None


def on_started(job: JobFacts, run_id: str | None, at: datetime) -> None:
    # A start no newer than the last completion arrived late (an offline client's backlog,
    # a batch out of order): that run is over, and watching it would page for nothing.
    if job.last_run_at is not None and at <= job.last_run_at:
        return
    job.running_run_id, job.running_since = run_id, at


def on_finished(job: JobFacts, run_id: str | None, at: datetime) -> Transition | None:
    """Any completion ends the watch: a run that finished is no longer running."""
    job.running_run_id = job.running_since = None
    return resolve(job, KIND, job=job.name, at=at,
                   summary=f"Backup job {job.name} finished its run")


def on_deadline(job: JobFacts, now: datetime, policies: PolicyBook) -> Transition | None:
    due = deadline(job, policies)
    if due is None or due > now or job.running_since is None:
        return None
    allowed = limit(job, policies)
    return fire(
        job, KIND, job=job.name, at=now, severity="warning",
        summary=f"Backup job {job.name} has been running since "
                f"{job.running_since:%Y-%m-%d %H:%M} UTC without finishing",
        details={"run_id": job.running_run_id, "started_at": job.running_since.isoformat(),
                 "max_runtime_seconds": allowed.total_seconds() if allowed else None},
    )
