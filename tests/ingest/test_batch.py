"""POST /v1/runs:batch: up to 500 reports, each validated and stored on its own."""

from __future__ import annotations

from shared.events import RunReported
from tests.ingest.support import Ingest, stored_events


async def test_batch_has_a_result_per_item(ingest: Ingest) -> None:
    runs = [
        {"job": "db", "status": "success", "run_id": "1"},
        {"job": "db", "status": "nope"},
        {"job": "files", "status": "failure", "run_id": "2", "unknown": True},
        {"job": "files", "status": "failure", "run_id": "3"},
        {"job": "db", "status": "success", "run_id": "1"},  # the same report again
        "not an object",
    ]
    answer = await ingest.client.post(
        "/v1/runs:batch", json={"runs": runs}, headers=ingest.auth(ingest.a))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["status"] for r in body["results"]] == [
        "stored", "invalid", "invalid", "stored", "duplicate", "invalid"]
    assert (body["stored"], body["duplicates"], body["rejected"]) == (2, 1, 3)
    assert body["results"][1]["errors"][0]["field"] == "status"
    assert body["results"][2]["errors"][0]["field"] == "unknown"
    events = await stored_events(ingest.bus, RunReported)
    assert sorted(e.run_id or "" for e in events) == ["1", "3"]
    assert {e.tenant for e in events} == {ingest.a.account.tenant()}


async def test_batch_size_is_limited(ingest: Ingest) -> None:
    too_many = [{"job": "db", "status": "success"}] * 501
    answer = await ingest.client.post(
        "/v1/runs:batch", json={"runs": too_many}, headers=ingest.auth(ingest.a))
    empty = await ingest.client.post(
        "/v1/runs:batch", json={"runs": []}, headers=ingest.auth(ingest.a))
    assert answer.status_code == empty.status_code == 422
    assert await stored_events(ingest.bus) == []


async def test_full_batch_of_500_is_stored(ingest: Ingest) -> None:
    runs = [{"job": f"job-{i % 7}", "status": "success", "run_id": str(i)} for i in range(500)]
    answer = await ingest.client.post(
        "/v1/runs:batch", json={"runs": runs}, headers=ingest.auth(ingest.a))
    assert answer.status_code == 200
    assert answer.json()["stored"] == 500
    assert len(await stored_events(ingest.bus, RunReported)) == 500
