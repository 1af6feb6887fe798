"""Failed runs: fire when failures in a row reach the job's tolerance, resolve on a success."""

from __future__ import annotations

from services.evaluator.facts import JobFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook
from shared.events import RunReported
from shared.logtail import log_tail, readable

KIND = "failed_run"
# What of the failing run an alert carries to its e-mails and webhooks (its details): the
# message and the end of the log, where the error is, small enough for a ticket.
MESSAGE_CHARS = 1000
LOG_TAIL_BYTES = 2000
LOG_TAIL_LINES = 20


def is_failure(run: RunReported, warning_with_errors_fails: bool) -> bool:
    if run.status == "failure":
        return True
    return (run.status == "warning" and warning_with_errors_fails
            and bool(run.error_count and run.error_count > 0))


def on_finished(job: JobFacts, run: RunReported, policies: PolicyBook) -> Transition | None:
    """Count a finished run into the job's failure streak."""
    at = run.finished_at or run.occurred_at
    failed = is_failure(run, policies.as_flag("warning_with_errors_fails", job.tenant, job.name))
    if not failed:
        job.consecutive_failures = 0
        return resolve(job, KIND, job=job.name, at=at,
                       summary=f"Backup job {job.name} succeeded again")
    job.consecutive_failures += 1
    tolerance = policies.as_int("failures_tolerance", job.tenant, job.name, job.from_schedule)
    if job.consecutive_failures < tolerance:
        return None
    detail = f": {run.message}" if run.message else ""
    return fire(
        job, KIND, job=job.name, at=at, severity="error",
        summary=f"Backup job {job.name} failed{detail}"[:1000],
        details={"consecutive_failures": job.consecutive_failures, "tolerance": tolerance,
                 "status": run.status, "exit_code": run.exit_code,
                 "error_count": run.error_count, "run_id": run.run_id,
                 "message": run.message[:MESSAGE_CHARS] if run.message else None,
                 "log_tail": _log_tail(run.log_excerpt)},
    )


def _log_tail(excerpt: str | None) -> str | None:
    if not excerpt or not excerpt.strip():
        return None
    return log_tail(readable(excerpt).rstrip("\n"), LOG_TAIL_BYTES, LOG_TAIL_LINES)
