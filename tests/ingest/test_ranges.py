"""Ingest accepts only what the consumers can process: times within a sane range that convert to
UTC, finite numbers within what the database and arithmetic hold, text the database can store.
Whatever else it accepted would fail later, in the evaluator, for every tenant of a partition."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import RunReported, UsageReported
from tests.ingest.support import Ingest, stored_events

YEAR_ONE = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"]
# JSON has no NaN or infinity; Python's parser reads them anyway, and huge exponents too.
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]


def _raw(body: dict[str, Any], number: str) -> bytes:
    return json.dumps(body).replace('"NUMBER"', number).encode()


@pytest.mark.parametrize("when", YEAR_ONE)
@pytest.mark.parametrize("field", ["started_at", "finished_at"])
async def test_a_time_before_2000_is_refused_with_a_clear_message(
    ingest: Ingest, when: str, field: str
) -> None:
    status = "started" if field == "started_at" else "failure"
    answer = await ingest.post_run({"job": "db", "status": status, field: when})
    assert answer.status_code == 422, answer.text
    assert field in answer.text and "before 2000-01-01" in answer.text, answer.text
    assert await stored_events(ingest.bus) == []


async def test_a_time_at_the_end_of_the_calendar_is_refused_as_future(ingest: Ingest) -> None:
    answer = await ingest.post_run(
        {"job": "db", "status": "success", "finished_at": "9999-12-31T23:59:59-14:00"})
    assert answer.status_code == 422 and "future" in answer.text, answer.text


async def test_times_are_stored_in_utc(ingest: Ingest) -> None:
    local = datetime.now(UTC).astimezone().replace(microsecond=0) - timedelta(minutes=1)
    answer = await ingest.post_run({"job": "db", "status": "success",
                                    "finished_at": local.isoformat(timespec="seconds")})
    assert answer.status_code == 202, answer.text
    (event,) = await stored_events(ingest.bus, RunReported)
    assert event.finished_at == local and event.finished_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("number", NOT_FINITE)
async def test_a_duration_that_is_not_a_finite_number_is_refused(
    ingest: Ingest, number: str
) -> None:
    body = _raw({"job": "db", "status": "success", "duration_seconds": "NUMBER"}, number)
    answer = await ingest.client.post("/v1/runs", content=body, headers={
        **ingest.auth(ingest.a), "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert "duration_seconds" in answer.text
    assert await stored_events(ingest.bus) == []


@pytest.mark.parametrize("field", ["bytes_transferred", "files_transferred", "error_count"])
@pytest.mark.parametrize("number", ["9223372036854775808", "1" + "0" * 5000, "NaN", "1e400"])
async def test_counters_beyond_bigint_are_refused(ingest: Ingest, field: str, number: str) -> None:
    body = _raw({"job": "db", "status": "success", field: "NUMBER"}, number)
    answer = await ingest.client.post("/v1/runs", content=body, headers={
        **ingest.auth(ingest.a), "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    # Past 4,300 digits the JSON parser refuses the number before any field sees it.
    assert field in answer.text or "number out of range" in answer.text, answer.text


async def test_usage_beyond_bigint_is_refused(ingest: Ingest) -> None:
    for body in ({"bytes_used": 2**63}, {"bytes_used": 1, "quota_bytes": 10**30},
                 {"bytes_used": 1, "jobs": {"db": 2**64}}):
        answer = await ingest.client.post("/v1/usage", json=body, headers=ingest.auth(ingest.a))
        assert answer.status_code == 422, (body, answer.text)
    assert await stored_events(ingest.bus, UsageReported) == []


@pytest.mark.parametrize("field", ["message", "run_id", "client_name", "client_version"])
async def test_text_the_database_cannot_store_is_refused(ingest: Ingest, field: str) -> None:
    answer = await ingest.post_run({"job": "db", "status": "failure", field: "disk\x00full"})
    assert answer.status_code == 422, answer.text
    assert field in answer.text


async def test_each_batch_item_is_held_to_the_same_ranges(ingest: Ingest) -> None:
    runs = [
        {"job": "db", "status": "failure", "finished_at": "0001-01-01T00:00:00+14:00"},
        {"job": "db", "status": "success", "bytes_transferred": 2**63},
        {"job": "db", "status": "failure", "message": "a\x00b"},
        {"job": "db", "status": "failure", "run_id": "fine"},
    ]
    answer = await ingest.client.post(
        "/v1/runs:batch", json={"runs": runs}, headers=ingest.auth(ingest.a))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["invalid", "invalid", "invalid", "stored"]
    assert "before 2000-01-01" in results[0]["errors"][0]["message"]
    assert [e.run_id for e in await stored_events(ingest.bus, RunReported)] == ["fine"]


async def test_an_exit_status_of_thousands_of_digits_is_a_bad_url(ingest: Ingest) -> None:
    key = ingest.a.ping_key
    for path in (f"/ping/{key}/{'9' * 5000}", f"/ping/{key}/db/{'9' * 5000}"):
        answer = await ingest.client.get(path)
        assert answer.status_code == 400 and answer.text == "invalid url format"


@pytest.mark.parametrize("text", ["1.0\n", "borg\rmatic", "x\x1b[31m", "a\x85b"])
@pytest.mark.parametrize("field", ["client_name", "client_version"])
async def test_client_names_and_versions_are_one_line(
    ingest: Ingest, field: str, text: str
) -> None:
    # They end up in e-mail subjects and operator tables, where a line break or an escape
    # sequence would do harm; a run's message may have several lines.
    answer = await ingest.post_run({"job": "db", "status": "success", field: text})
    assert answer.status_code == 422 and field in answer.text, answer.text
    beat = await ingest.client.post("/v1/heartbeat", headers=ingest.auth(ingest.a), json={
        "client_name": "restic", "client_version": "0.17.0", field: text})
    assert beat.status_code == 422, beat.text
    assert await stored_events(ingest.bus) == []
    multi_line = await ingest.post_run({"job": "db", "status": "failure",
                                        "message": "disk full\nsee the log"})
    assert multi_line.status_code == 202, multi_line.text
