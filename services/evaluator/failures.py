"""Failed runs: fire when failures in a row reach the job's tolerance, resolve on a success."""

from __future__ import annotations

from services.evaluator.facts import JobFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook
from shared.events import RunReported

KIND = "failed_run"


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
                 "error_count": run.error_count, "run_id": run.run_id},
    )
