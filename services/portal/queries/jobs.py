"""A job's page header: the job, its schedule and next due times, the thresholds in force with
where each comes from (the evaluator's own resolution, :mod:`services.evaluator.admin`), and its
open alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.evaluator.admin import Bound, effective
from services.evaluator.policies import SETTINGS, Value
from services.evaluator.schedules import InvalidSchedule, Schedule
from services.evaluator.tables import Alert, JobState
from services.portal.queries.overview import JobRow, job_row
from shared.db import core_table
from shared.scopes import Scope

NEXT_DUE = 5


@dataclass(frozen=True)
class ThresholdInForce:
    name: str
    value: Value
    source: str  # job, schedule, account, customer, reseller or default
    description: str


@dataclass(frozen=True)
class OpenAlert:
    alert_id: str  # the /alerts/<id> page's id
    kind: str
    severity: str
    summary: str
    first_seen: datetime


@dataclass(frozen=True)
class JobDetail:
    job: JobRow
    schedule: str | None  # in words: "0 2 * * * (Europe/Berlin)", "every 3600s"; None: none
    next_due: list[datetime]  # the next due times, the first one pending
    grace_seconds: int
    max_runtime: str  # what bounds a started run, in words
    thresholds: list[ThresholdInForce]
    alerts: list[OpenAlert]


def job_detail(session: Session, scope: Scope, job_id: str, now: datetime) -> JobDetail | None:
    """None when the job does not exist or is not in ``scope``."""
    job = job_row(session, scope, job_id, now)
    if job is None:
        return None
    in_force = effective(session, job.account_id, job.job_name)
    values = in_force.values
    state = session.get(JobState, job_id)
    schedule = _schedule(state)
    return JobDetail(
        job=job,
        schedule=schedule.describe() if schedule else None,
        next_due=_next_due(schedule, job.next_due_at, now),
        grace_seconds=int(values["grace_seconds"][0]),
        max_runtime=_bound_text(in_force.run_bound(scheduled=schedule is not None)),
        thresholds=[ThresholdInForce(name, value, source, SETTINGS[name].description)
                    for name, (value, source) in values.items()],
        alerts=_open_alerts(session, job),
    )


def _schedule(state: JobState | None) -> Schedule | None:
    if state is None:
        return None
    try:
        if state.cron:
            return Schedule(cron=state.cron, timezone=state.timezone or "UTC")
        if state.interval_seconds:
            return Schedule(interval_seconds=state.interval_seconds)
    except InvalidSchedule:
        return None
    return None


def _next_due(schedule: Schedule | None, pending: datetime | None, now: datetime
              ) -> list[datetime]:
    if schedule is None:
        return []
    due = [pending] if pending is not None else [schedule.next_after(now)]
    while len(due) < NEXT_DUE:
        due.append(schedule.next_after(due[-1]))
    return due


def _bound_text(bound: Bound | None) -> str:
    if bound is None:
        return "none: a started run may take forever"
    if bound.setting is None:
        return "the schedule's period"
    return f"{timedelta(seconds=bound.seconds)} ({bound.setting}, from {bound.source})"


def _open_alerts(session: Session, job: JobRow) -> list[OpenAlert]:
    alerts = core_table(Alert)
    rows = session.execute(sql_select(alerts).where(
        alerts.c.account_id == job.account_id, alerts.c.job == job.job_name,
        alerts.c.state == "firing").order_by(alerts.c.first_seen.desc())).mappings()
    return [OpenAlert(row["id"], row["kind"], row["severity"], row["summary"], row["first_seen"])
            for row in rows]
