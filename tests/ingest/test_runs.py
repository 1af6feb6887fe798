"""POST /v1/runs: reports become RunReported events on JetStream, tenant from the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.ingest.excerpts import cap_excerpt
from shared.events import RunReported
from tests.ingest.support import Ingest, stored_events


async def test_run_is_stored_with_the_tokens_tenant(ingest: Ingest) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    answer = await ingest.post_run({
        "job": "nightly", "status": "success", "run_id": "r1",
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(seconds=90)).isoformat(),
        "exit_code": 0, "bytes_transferred": 123, "files_transferred": 4, "error_count": 0,
        "client_name": "borgmatic", "client_version": "1.9.4",
    })
    assert answer.status_code == 202, answer.text
    (event,) = await stored_events(ingest.bus, RunReported)
    assert event.event_id == answer.json()["event_id"]
    assert event.tenant == ingest.a.account.tenant()
    assert event.subject().endswith(ingest.a.account.tenant().tokens())
    assert (event.job, event.status, event.duration_seconds) == ("nightly", "success", 90.0)
    assert (event.client_name, event.client_version, event.source) == ("borgmatic", "1.9.4", "api")


async def test_started_then_completed_by_run_id(ingest: Ingest) -> None:
    first = await ingest.post_run({"job": "db", "status": "started", "run_id": "abc"})
    second = await ingest.post_run(
        {"job": "db", "status": "failure", "run_id": "abc", "exit_code": 2, "duration_seconds": 7}
    )
    assert first.status_code == second.status_code == 202
    events = await stored_events(ingest.bus, RunReported)
    assert [(e.status, e.run_id) for e in events] == [("started", "abc"), ("failure", "abc")]
    assert events[1].duration_seconds == 7 and events[1].exit_code == 2


async def test_same_run_id_is_stored_once(ingest: Ingest) -> None:
    body = {"job": "db", "status": "success", "run_id": "once"}
    first = await ingest.post_run(body)
    again = await ingest.post_run(body)
    assert first.json() == {"event_id": first.json()["event_id"], "duplicate": False}
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    assert len(await stored_events(ingest.bus, RunReported)) == 1


async def test_long_log_excerpt_is_cut_with_a_marker_not_refused(ingest: Ingest) -> None:
    log = "first line\n" + "x" * 100_000 + "\nERROR: repository locked"
    answer = await ingest.post_run({"job": "db", "status": "failure", "log_excerpt": log})
    assert answer.status_code == 202
    (event,) = await stored_events(ingest.bus, RunReported)
    assert event.log_excerpt is not None
    assert len(event.log_excerpt.encode()) <= 16 * 1024
    assert event.log_excerpt.startswith("first line")
    assert event.log_excerpt.endswith("ERROR: repository locked")
    assert "truncated by Backstop" in event.log_excerpt


def test_excerpt_cap_keeps_short_logs_and_whole_characters() -> None:
    assert cap_excerpt("short", 1000) == "short"
    assert cap_excerpt(None, 1000) is None
    cut = cap_excerpt("ä" * 5000, 1000)
    assert cut is not None and len(cut.encode()) <= 1000 and "\ufffd" not in cut


async def test_invalid_reports_get_field_level_422(ingest: Ingest) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cases: dict[str, dict[str, Any]] = {
        "status": {"job": "db", "status": "done"},
        "job": {"job": "../etc", "status": "success"},
        "finished_at": {"job": "db", "status": "success", "finished_at": future},
        "exit_code": {"job": "db", "status": "success", "exit_code": 999},
        "tenant": {"job": "db", "status": "success", "tenant": {"account": "someone-else"}},
    }
    for field, body in cases.items():
        answer = await ingest.post_run(body)
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.text, answer.text
    started = await ingest.post_run({"job": "db", "status": "started", "finished_at": future})
    assert started.status_code == 422
    assert await stored_events(ingest.bus) == []


async def test_naive_timestamps_and_reversed_times_are_refused(ingest: Ingest) -> None:
    now = datetime.now(UTC)
    naive = await ingest.post_run(
        {"job": "db", "status": "success", "finished_at": "2026-01-01T00:00:00"})
    reversed_ = await ingest.post_run({
        "job": "db", "status": "success", "started_at": now.isoformat(),
        "finished_at": (now - timedelta(hours=1)).isoformat(),
    })
    assert naive.status_code == reversed_.status_code == 422
    assert "time zone" in naive.text and "before" in reversed_.text


async def test_not_json_is_a_422(ingest: Ingest) -> None:
    answer = await ingest.client.post(
        "/v1/runs", content=b"{not json", headers={**ingest.auth(ingest.a),
                                                  "Content-Type": "application/json"})
    assert answer.status_code == 422


async def test_missing_or_wrong_token_is_401(ingest: Ingest) -> None:
    body = {"job": "db", "status": "success"}
    missing = await ingest.client.post("/v1/runs", json=body)
    wrong = await ingest.client.post(
        "/v1/runs", json=body, headers={"Authorization": "Bearer bst_nope"})
    ping_key_as_token = await ingest.client.post(
        "/v1/runs", json=body, headers={"Authorization": f"Bearer {ingest.a.ping_key}"})
    assert missing.status_code == wrong.status_code == ping_key_as_token.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert await stored_events(ingest.bus) == []
