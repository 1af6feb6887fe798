"""The rules engine for the accounts one replica owns: events and deadlines in, alert
transitions out. Plain Python over in-memory facts; the store does the I/O around it.

Events and deadlines of one account go through the same engine one at a time, so an account's
alerts change in the order its events and deadlines happen.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Hashable, Iterable
from datetime import datetime, timedelta

from services.evaluator import dormancy, failures, missed, overruns, quota, versions
from services.evaluator.deadlines import DeadlineIndex
from services.evaluator.facts import AccountFacts, JobFacts, JobKey, Transition
from services.evaluator.policies import PolicyBook, Value
from shared.clock import Clock
from shared.events import (
    Event,
    HeartbeatReported,
    RunReported,
    ScheduleSet,
    Tenant,
    UsageReported,
)
from shared.schedules import InvalidSchedule, Schedule

log = logging.getLogger(__name__)

# Clients with a clock ahead of ours must not push deadlines into the future.
_MAX_CLOCK_SKEW = timedelta(minutes=5)
_SCHEDULE_DEFAULTS = {
    name: ScheduleSet.model_fields[name].default
    for name in ("grace_seconds", "missed_runs_tolerance", "failures_tolerance",
                 "max_runtime_seconds")
}


def _snapshot(account: AccountFacts) -> tuple[object, ...]:
    """What of an account is stored: unchanged accounts are not written back."""
    return (account.first_run_at, account.zero_bytes_since, account.quota_bytes)


def schedule_settings(event: ScheduleSet) -> dict[str, Value]:
    """The settings a client chose for its job: those that differ from the event's defaults."""
    out: dict[str, Value] = {}
    for name, default in _SCHEDULE_DEFAULTS.items():
        value = getattr(event, name)
        if value is not None and value != default:
            out[name] = value
    return out


class Engine:
    def __init__(self, policies: PolicyBook, clock: Clock) -> None:
        self.policies = policies
        self.clock = clock
        self.jobs: dict[JobKey, JobFacts] = {}
        self.accounts: dict[str, AccountFacts] = {}
        self.deadlines = DeadlineIndex()
        self.dirty_jobs: set[JobKey] = set()
        self.dirty_accounts: set[str] = set()
        self.schedule_changed: set[JobKey] = set()

    # --- loading ---------------------------------------------------------------------------

    def load(self, jobs: Iterable[JobFacts], accounts: Iterable[AccountFacts]) -> None:
        """Take over facts read from the database and index their deadlines in one go."""
        for account in accounts:
            self.accounts[account.tenant.account] = account
        for job in jobs:
            self.jobs[job.key] = job
        entries: list[tuple[Hashable, datetime]] = []
        for key, job in self.jobs.items():
            when = self._job_deadline(job)
            if when is not None:
                entries.append((("j", *key), when))
        for account_id, account in self.accounts.items():
            when = dormancy.deadline(account, self.policies)
            if when is not None:
                entries.append((("a", account_id), when))
        self.deadlines.rebuild(entries)

    def replace(
        self, account_ids: Collection[str], jobs: Iterable[JobFacts],
        accounts: Iterable[AccountFacts],
    ) -> None:
        """Put facts read from the database in place of what memory holds of ``account_ids``
        (ahead of the database after a failed transaction); nothing else is touched."""
        for key in [key for key in self.jobs if key[0] in account_ids]:
            del self.jobs[key]
            self.deadlines.set(("j", *key), None)
        for account_id in account_ids:
            self.accounts.pop(account_id, None)
            self.deadlines.set(("a", account_id), None)
        self.dirty_jobs = {key for key in self.dirty_jobs if key[0] not in account_ids}
        self.schedule_changed = {k for k in self.schedule_changed if k[0] not in account_ids}
        self.dirty_accounts -= set(account_ids)
        for account in accounts:
            self.accounts[account.tenant.account] = account
            self._reschedule_account(account)
        for job in jobs:
            self.jobs[job.key] = job
            self._reschedule_job(job)

    def add_account(self, account: AccountFacts) -> None:
        if account.tenant.account in self.accounts:
            return
        self.accounts[account.tenant.account] = account
        self._reschedule_account(account)

    def set_policies(self, policies: PolicyBook) -> None:
        """New thresholds: deadlines that depend on them move."""
        unchanged = policies == self.policies
        self.policies = policies
        if unchanged:
            return
        self.load([], [])  # re-index every deadline under the new policies

    # --- events ----------------------------------------------------------------------------

    def apply(self, event: Event) -> list[Transition]:
        account = self._account(event.tenant)
        before = _snapshot(account)
        transitions = self._apply(event)
        if _snapshot(account) != before:
            self.dirty_accounts.add(event.tenant.account)
        return transitions

    def _apply(self, event: Event) -> list[Transition]:
        if isinstance(event, RunReported):
            return self._on_run(event)
        if isinstance(event, ScheduleSet):
            self._on_schedule(event)
            return []
        if isinstance(event, UsageReported):
            account = self._account(event.tenant)
            changed = quota.on_usage(account, event.bytes_used, event.quota_bytes,
                                     self._bounded(event.occurred_at), self.policies)
            return [changed] if changed else []
        if isinstance(event, HeartbeatReported):
            account = self._account(event.tenant)
            changed = versions.on_client(account, event.client_name, event.client_version,
                                         self._bounded(event.occurred_at), self.policies)
            return [changed] if changed else []
        return []

    def _on_run(self, run: RunReported) -> list[Transition]:
        job = self._job(run.tenant, run.job)
        account = self._account(run.tenant)
        out: list[Transition | None] = []
        if run.status == "started":
            at = self._bounded(run.started_at or run.occurred_at)
            overruns.on_started(job, run.run_id, at)
        else:
            at = self._bounded(run.finished_at or run.occurred_at)
            job.last_status, job.last_run_at = run.status, at
            if run.status != "failure":
                job.last_success_at = at
            out.append(failures.on_finished(job, run, self.policies))
            out.append(overruns.on_finished(job, run.run_id, at))
        out.append(missed.on_activity(job, at))
        out.extend(dormancy.on_run(account, run, at))
        if run.client_name and run.client_version:
            out.append(versions.on_client(account, run.client_name, run.client_version, at,
                                          self.policies))
        self._reschedule_job(job)
        self._reschedule_account(account)
        return [t for t in out if t is not None]

    def _on_schedule(self, event: ScheduleSet) -> None:
        job = self._job(event.tenant, event.job)
        self.schedule_changed.add(job.key)
        job.from_schedule = schedule_settings(event)
        try:
            schedule = Schedule.from_event(event)
        except InvalidSchedule as exc:
            log.warning("job %s/%s: schedule ignored: %s", event.tenant.account, event.job, exc)
            schedule = None
        if schedule != job.schedule:
            job.schedule = schedule
            if schedule is None:
                job.next_due_at = None
            else:
                missed.on_schedule(job, self._bounded(event.occurred_at))
        self._reschedule_job(job)

    # --- time ------------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        return self.deadlines.earliest()

    def due(self) -> list[Transition]:
        """Evaluate every deadline that has passed, catching up on all missed occurrences."""
        now = self.clock.now()
        out: list[Transition | None] = []
        for key in self.deadlines.pop_due(now):
            assert isinstance(key, tuple)
            if key[0] == "j":
                job = self.jobs.get((key[1], key[2]))
                if job is None:
                    continue
                out.append(missed.on_deadline(job, now, self.policies))
                out.append(overruns.on_deadline(job, now, self.policies))
                self.dirty_jobs.add(job.key)
                self._reschedule_job(job)
            else:
                account = self.accounts.get(key[1])
                if account is None:
                    continue
                out.extend(dormancy.on_deadline(account, now, self.policies))
                self.dirty_accounts.add(key[1])
                self._reschedule_account(account)
        return [t for t in out if t is not None]

    # --- helpers ---------------------------------------------------------------------------

    def _bounded(self, at: datetime) -> datetime:
        limit = self.clock.now() + _MAX_CLOCK_SKEW
        return at if at <= limit else limit

    def _job(self, tenant: Tenant, name: str) -> JobFacts:
        key = (tenant.account, name)
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = JobFacts(tenant=tenant, name=name)
        self.dirty_jobs.add(key)
        return job

    def _account(self, tenant: Tenant) -> AccountFacts:
        account = self.accounts.get(tenant.account)
        if account is None:
            # Not in the accounts table (yet): its age is unknown, so count from now.
            account = AccountFacts(tenant=tenant, created_at=self.clock.now())
            self.accounts[tenant.account] = account
            self.dirty_accounts.add(tenant.account)
        return account

    def _job_deadline(self, job: JobFacts) -> datetime | None:
        found = [d for d in (missed.deadline(job, self.policies),
                             overruns.deadline(job, self.policies)) if d is not None]
        return min(found) if found else None

    def _reschedule_job(self, job: JobFacts) -> None:
        self.deadlines.set(("j", *job.key), self._job_deadline(job))

    def _reschedule_account(self, account: AccountFacts) -> None:
        self.deadlines.set(("a", account.tenant.account),
                           dormancy.deadline(account, self.policies))

    def take_dirty(self) -> tuple[list[JobFacts], list[AccountFacts], set[JobKey]]:
        """What changed since the last call: jobs, accounts, and jobs whose schedule changed."""
        jobs = [self.jobs[k] for k in self.dirty_jobs if k in self.jobs]
        accounts = [self.accounts[a] for a in self.dirty_accounts if a in self.accounts]
        rescheduled = self.schedule_changed
        self.dirty_jobs, self.dirty_accounts, self.schedule_changed = set(), set(), set()
        return jobs, accounts, rescheduled
