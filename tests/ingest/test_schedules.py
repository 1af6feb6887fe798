"""PUT /v1/jobs/{job}/schedule: validated, and an unchanged schedule is a no-op."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from services.ingest.cron import HORIZON_YEARS, check_cron
from services.ingest.tables import StoredSchedule
from shared.events import ScheduleSet
from shared.tenancy import Job
from tests.ingest.support import Ingest, stored_events

NIGHTLY = {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "grace_seconds": 1800,
           "missed_runs_tolerance": 2, "failures_tolerance": 3, "max_runtime_seconds": 7200}


async def put(ingest: Ingest, job: str, body: dict[str, Any]) -> Any:
    return await ingest.client.put(
        f"/v1/jobs/{job}/schedule", json=body, headers=ingest.auth(ingest.a))


async def test_schedule_becomes_an_event_and_repeats_are_no_ops(ingest_both_db: Ingest) -> None:
    ingest = ingest_both_db
    first = await put(ingest, "nightly", NIGHTLY)
    again = await put(ingest, "nightly", NIGHTLY)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    (event,) = await stored_events(ingest.bus, ScheduleSet)
    assert event.tenant == ingest.a.account.tenant()
    assert (event.job, event.cron, event.timezone, event.grace_seconds) == (
        "nightly", "0 3 * * *", "Europe/Berlin", 1800)
    assert (event.missed_runs_tolerance, event.failures_tolerance) == (2, 3)
    assert event.max_runtime_seconds == 7200
    with ingest.db.session() as session:
        assert session.exec(select(Job).where(Job.name == "nightly")).one()
        assert session.exec(select(StoredSchedule)).one().version == 1


async def test_changing_back_and_forth_publishes_each_change(ingest_both_db: Ingest) -> None:
    ingest = ingest_both_db
    hourly = {"interval_seconds": 3600}
    ids = [(await put(ingest, "db", body)).json()["event_id"]
           for body in (NIGHTLY, hourly, NIGHTLY)]
    assert len(set(ids)) == 3
    events = await stored_events(ingest.bus, ScheduleSet)
    assert [e.interval_seconds for e in events] == [None, 3600, None]


async def test_cron_defaults_to_utc(ingest: Ingest) -> None:
    assert (await put(ingest, "db", {"cron": "*/15 * * * *"})).status_code == 200
    (event,) = await stored_events(ingest.bus, ScheduleSet)
    assert event.timezone == "UTC"


async def test_bad_schedules_get_a_clear_422(ingest: Ingest) -> None:
    cases: dict[str, dict[str, Any]] = {
        "invalid cron expression": {"cron": "61 * * * *"},
        "five fields": {"cron": "* * *"},
        "never fires": {"cron": "0 0 30 2 *"},
        "never fires ": {"cron": "* 15-16 10-28 * 5#5"},  # a fifth Friday is the 29th or later
        "unknown time zone": {"cron": "0 3 * * *", "timezone": "Mars/Olympus"},
        "either cron": {"cron": "0 3 * * *", "interval_seconds": 3600},
        "either cron ": {},
        "greater than or equal to 60": {"interval_seconds": 59},
        "timezone only applies": {"interval_seconds": 600, "timezone": "UTC"},
        "Extra inputs": {"interval_seconds": 600, "every": "day"},
    }
    for expected, body in cases.items():
        answer = await put(ingest, "db", body)
        assert answer.status_code == 422, (body, answer.text)
        assert expected.strip() in answer.text, answer.text
    assert (await put(ingest, "bad name!", {"interval_seconds": 600})).status_code == 422
    assert await stored_events(ingest.bus) == []


def test_a_cron_must_fire_within_the_horizon() -> None:
    """croniter would search 50 years for a date that never comes; the horizon bounds that."""
    assert check_cron("0 0 29 2 *") == "0 0 29 2 *"  # every four years
    with pytest.raises(ValueError, match=f"within {HORIZON_YEARS} years"):
        check_cron("0 0 * 2 1#5")  # a fifth Monday in February: next in 2044
