"""The contract between ingest and the evaluator: whatever ingest's schemas accept becomes an
event the evaluator's engine processes, and its store writes, without an exception.

A report that passed ingest and then broke the evaluator would be refused for good, and the
tenant's alert with it; before the bus told permanent from transient failures, it held up a
sixteenth of all accounts for four minutes. Hypothesis builds request bodies across and beyond
every range (year-1 times at +14:00, NaN, numbers past BIGINT, NUL in text, cron schedules in
zones east and west of UTC), keeps those the schemas accept, builds the events ingest builds
from them, sends them through the wire format and applies them, with deadlines falling due in
between; the second test also writes what changed to SQLite and PostgreSQL, as a batch does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from services.evaluator import store
from services.evaluator.clock import FakeClock
from services.evaluator.engine import Engine
from services.evaluator.facts import Transition
from services.evaluator.policies import PolicyBook
from services.ingest.auth import Caller
from services.ingest.pings import Ping, ping_event
from services.ingest.runs import run_event
from services.ingest.schedules import schedule_event
from services.ingest.schemas import HeartbeatReport, RunReport, ScheduleRequest, UsageReport
from services.ingest.usage import heartbeat_event, usage_event
from shared.db import Database
from shared.events import Event, Tenant, decode
from tests.support import make_account, tenant_of

TENANT = Tenant(reseller="r", customer="c", account="a")
JOBS = ["nightly", "db"]
CRONS = ["0 3 * * *", "*/5 * * * *", "30 2 * * 1-5", "0 0 1 * *", "0 0 29 2 *", "@daily",
         "@hourly", "59 23 31 12 *", "0 12 * * 0", "15 1,13 * * *"]
# East and west of UTC as far as zones go, with odd offsets and DST changes.
ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "America/New_York",
         "America/St_Johns", "Pacific/Marquesas", "Asia/Kathmandu", "Australia/Lord_Howe",
         "Europe/Berlin"]
OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
           timezone(timedelta(hours=5, minutes=45)), ZoneInfo("America/New_York"),
           ZoneInfo("Australia/Lord_Howe")]
NOW = datetime.now(UTC)



def _mostly(usual: st.SearchStrategy[Any], wild: st.SearchStrategy[Any],
            ) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else ``wild``: bodies with one wild field out of
    several still pass the schemas often enough to reach the engine."""
    return st.integers(0, 3).flatmap(lambda n: wild if n == 0 else usual)


# Near now (what clients send), or anywhere in the calendar, or the edges of the ranges.
_times = st.one_of(
    st.datetimes(min_value=(NOW - timedelta(days=800)).replace(tzinfo=None),
                 max_value=(NOW + timedelta(minutes=9)).replace(tzinfo=None),
                 timezones=st.sampled_from(OFFSETS)),
    st.datetimes(timezones=st.sampled_from(OFFSETS)),
    st.sampled_from([
        "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "2000-01-01T00:00:00Z",
        "2000-01-01T00:00:00+14:00", "1999-12-31T23:59:59-12:00", "9999-12-31T23:59:59-14:00",
    ]))
_huge = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                  st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -1]))


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return _mostly(st.integers(low, high), _huge)


_floats = _mostly(st.floats(min_value=0, max_value=366 * 86400), st.floats())
_texts = _mostly(st.sampled_from(["1.9.4", "0.16.2", "2.10", "disk full"]),
                 st.one_of(st.text(max_size=30), st.just("x\x00y")))
_counts = _ints(0, 10**13)
_seconds = _ints(0, 40 * 86400)
_tolerances = _ints(1, 5)


def _iso(value: Any) -> Any:
    """As a client sends it: times as ISO 8601 text."""
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Upload:
    """One request to ingest: the schema it is validated with and the body."""

    schema: type[BaseModel]
    body: dict[str, Any]
    job: str = "nightly"

    def event(self, caller: Caller) -> Event | None:
        """The event ingest stores for this request; None where ingest answers 422."""
        try:
            request = self.schema.model_validate({k: _iso(v) for k, v in self.body.items()})
        except ValidationError:
            return None
        if isinstance(request, RunReport):
            return run_event(caller.tenant, request, 16 * 1024)
        if isinstance(request, ScheduleRequest):
            return schedule_event(caller.tenant, self.job, request, version=1)
        if isinstance(request, UsageReport):
            return usage_event(caller, request)
        assert isinstance(request, HeartbeatReport)
        return heartbeat_event(caller, request)


_run_keys = {"job": st.sampled_from(JOBS),
             "status": st.sampled_from(["started", "success", "warning", "failure"])}
_run_times = {"started_at": _times, "finished_at": _times}
_run_others = {"duration_seconds": _floats, "exit_code": _ints(-1, 255),
               "bytes_transferred": _counts, "files_transferred": _counts,
               "error_count": _counts, "message": _texts,
               "run_id": st.sampled_from(["r1", "r2"]),
               "client_name": st.sampled_from(["restic", "borgmatic"]),
               "client_version": _texts}
# Times alone (where the edges are), or with every other field.
_runs = st.builds(Upload, st.just(RunReport), st.one_of(
    st.fixed_dictionaries(_run_keys, optional=_run_times),
    st.fixed_dictionaries(_run_keys, optional=_run_times | _run_others)))
_schedules = st.builds(Upload, st.just(ScheduleRequest), st.one_of(
    st.fixed_dictionaries({"cron": st.sampled_from(CRONS)},
                          optional={"timezone": st.sampled_from(ZONES)}),
    st.fixed_dictionaries({"interval_seconds": _ints(60, 366 * 86400)}),
).flatmap(lambda kind: st.fixed_dictionaries(
    {k: st.just(v) for k, v in kind.items()},
    optional={"grace_seconds": _seconds, "missed_runs_tolerance": _tolerances,
              "failures_tolerance": _tolerances, "max_runtime_seconds": _seconds})),
    st.sampled_from(JOBS))
_usage = st.builds(Upload, st.just(UsageReport), st.fixed_dictionaries(
    {"bytes_used": _counts},
    optional={"quota_bytes": _counts, "jobs": st.dictionaries(st.sampled_from(JOBS), _counts)}))
_heartbeats = st.builds(Upload, st.just(HeartbeatReport), st.fixed_dictionaries(
    {"client_name": st.sampled_from(["restic", "borgmatic"]), "client_version": _texts}))
_pings = st.builds(
    Ping, job=st.sampled_from(JOBS), action=st.sampled_from(["success", "start", "fail", "log"]),
    exit_status=st.one_of(st.none(), st.integers(0, 255)),
    run_id=st.sampled_from([None, "6f1d3c1e-6a53-4a53-9f55-0b2f2f8f5a10"]),
    body=st.binary(max_size=40), user_agent=st.one_of(st.none(), st.text(max_size=120)))
# Time passing between requests: deadlines fall due.
_waits = st.sampled_from([timedelta(minutes=1), timedelta(hours=5), timedelta(days=3),
                          timedelta(days=400)])


_steps = st.lists(st.one_of(_runs, _schedules, _usage, _heartbeats, _pings, _waits),
                  min_size=1, max_size=12)


def _transitions(engine: Engine, caller: Caller, step: Upload | Ping | timedelta,
                 ) -> list[Transition]:
    """What one step changes, as the partition worker meets it: an event, or time passing."""
    assert isinstance(engine.clock, FakeClock)
    if isinstance(step, timedelta):
        engine.clock.advance(step)
        return engine.due()
    event = ping_event(caller, step, 10_000) if isinstance(step, Ping) else step.event(caller)
    if event is None:
        return engine.due()
    return engine.apply(decode(event.encode())) + engine.due()  # as the evaluator receives it


# The two poison messages, tried every time.
YEAR_ONE_EAST = [Upload(RunReport, {"job": "nightly", "status": "failure",
                                    "finished_at": "0001-01-01T00:00:00+14:00"})]
YEAR_ONE_WEST_CRON = [
    Upload(ScheduleRequest, {"cron": "0 3 * * *", "timezone": "America/New_York"}),
    Upload(RunReport, {"job": "nightly", "status": "success",
                       "finished_at": "0001-01-01T00:00:00Z"}),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(YEAR_ONE_EAST)
@example(YEAR_ONE_WEST_CRON)
@given(_steps)
def test_whatever_ingest_accepts_the_engine_processes(steps: list[Any]) -> None:
    engine = Engine(PolicyBook(), FakeClock(NOW))
    caller = Caller(tenant=TENANT, quota_bytes=10**12, key="k")
    for step in steps:
        _transitions(engine, caller, step)
        engine.take_dirty()


@pytest.fixture
def caller(db: Database) -> Caller:
    return Caller(tenant=tenant_of(make_account(db)), quota_bytes=10**12, key="k")


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@example(steps=YEAR_ONE_EAST)
@example(steps=YEAR_ONE_WEST_CRON)
@given(steps=_steps)
def test_whatever_ingest_accepts_the_evaluator_stores(
    db: Database, caller: Caller, steps: list[Any]
) -> None:
    engine = Engine(PolicyBook(), FakeClock(NOW))
    # One transaction per example, rolled back: every example starts from the same database.
    with Session(db.engine) as session:
        for step in steps:
            transitions = _transitions(engine, caller, step)
            jobs, accounts, rescheduled = engine.take_dirty()  # as PartitionWorker._write
            store.save_jobs(session, jobs, rescheduled)
            store.save_accounts(session, accounts)
            store.record(session, transitions)
            session.flush()
        session.rollback()
