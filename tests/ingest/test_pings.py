"""The Healthchecks-compatible ping API, answered exactly as Healthchecks answers."""

from __future__ import annotations

import urllib.parse
import uuid

from sqlmodel import select

from shared.events import RunLogged, RunReported
from shared.tenancy import Job
from tests.ingest.support import Ingest, stored_events


async def test_plain_ping_is_a_success_of_the_default_job(ingest: Ingest) -> None:
    answer = await ingest.client.get(f"/ping/{ingest.a.ping_key}",
                                     headers={"User-Agent": "curl/8.5.0"})
    assert (answer.status_code, answer.text) == (200, "OK")
    assert answer.headers["Ping-Body-Limit"] == "10000"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    (event,) = await stored_events(ingest.bus, RunReported)
    assert (event.job, event.status, event.source) == ("default", "success", "ping")
    assert event.tenant == ingest.a.account.tenant()
    assert event.client_name == "curl/8.5.0" and event.finished_at is not None


async def test_get_head_and_post_all_count(ingest: Ingest) -> None:
    key = ingest.a.ping_key
    for method in ("GET", "HEAD", "POST"):
        answer = await ingest.client.request(method, f"/ping/{key}/")
        assert answer.status_code == 200, method
    assert len(await stored_events(ingest.bus, RunReported)) == 3


async def test_unknown_key_is_not_found(ingest: Ingest) -> None:
    for path in ("/ping/nope", "/ping/nope/start", "/ping/nope/db", "/ping/nope/db/fail"):
        answer = await ingest.client.post(path)
        assert (answer.status_code, answer.text) == (404, "not found"), path
    assert await stored_events(ingest.bus) == []


async def test_actions_and_exit_statuses(ingest: Ingest) -> None:
    key = ingest.a.ping_key
    for suffix in ("start", "fail", "0", "3", "log"):
        answer = await ingest.client.get(f"/ping/{key}/{suffix}")
        assert (answer.status_code, answer.text) == (200, "OK"), suffix
    runs = await stored_events(ingest.bus, RunReported)
    assert [(r.status, r.exit_code) for r in runs] == [
        ("started", None), ("failure", None), ("success", 0), ("failure", 3)]
    assert len(await stored_events(ingest.bus, RunLogged)) == 1


async def test_malformed_urls_are_400(ingest: Ingest) -> None:
    key = ingest.a.ping_key
    assert (await ingest.client.get(f"/ping/{key}/256")).text == "invalid url format"
    bad_rid = await ingest.client.get(f"/ping/{key}?rid=not-a-uuid")
    assert (bad_rid.status_code, bad_rid.text) == (400, "invalid uuid format")
    upper = await ingest.client.get(f"/ping/{key}/NightlyDB")
    assert (upper.status_code, upper.text) == (400, "invalid url format")
    assert await stored_events(ingest.bus) == []


async def test_post_body_is_the_log_cut_at_the_ping_body_limit(ingest: Ingest) -> None:
    body = b"borg create ...\n" + b"y" * 20_000
    answer = await ingest.client.post(f"/ping/{ingest.a.ping_key}/fail", content=body)
    assert answer.status_code == 200
    (event,) = await stored_events(ingest.bus, RunReported)
    assert event.log_excerpt is not None and len(event.log_excerpt) == 10_000
    assert event.log_excerpt.startswith("borg create")


async def test_slug_needs_create_the_first_time(ingest: Ingest) -> None:
    key = ingest.a.ping_key
    unknown = await ingest.client.get(f"/ping/{key}/nightly-db")
    created = await ingest.client.get(f"/ping/{key}/nightly-db?create=1")
    known = await ingest.client.get(f"/ping/{key}/nightly-db/start?create=1")
    assert (unknown.status_code, unknown.text) == (404, "not found")
    assert (created.status_code, created.text) == (201, "Created")
    assert (known.status_code, known.text) == (200, "OK")
    runs = await stored_events(ingest.bus, RunReported)
    assert [(r.job, r.status) for r in runs] == [("nightly-db", "success"),
                                                 ("nightly-db", "started")]


async def test_job_reported_by_api_can_be_pinged_by_slug(ingest: Ingest) -> None:
    await ingest.post_run({"job": "files", "status": "success"})
    answer = await ingest.client.get(f"/ping/{ingest.a.ping_key}/files/1")
    assert (answer.status_code, answer.text) == (200, "OK")
    runs = await stored_events(ingest.bus, RunReported)
    assert (runs[-1].job, runs[-1].status, runs[-1].exit_code) == ("files", "failure", 1)


async def test_runs_paired_by_rid(ingest: Ingest) -> None:
    """Start, log, finish (POST with the log), then a failure, each run with its rid (as runitor
    sends them; borgmatic sends no rid: see test_clients.py)."""
    key, ua = ingest.a.ping_key, {"User-Agent": "runitor/v1.4.1"}
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    base = f"/ping/{key}/backups"
    steps = [
        (f"{base}/start?create=1&rid={first}", b""),
        (f"{base}/log?rid={first}", b"Creating archive..."),
        (f"{base}?rid={first}", b"archive created\nDuration: 5 s"),
        (f"{base}/start?rid={second}", b""),
        (f"{base}/fail?rid={second}", b"Repository lock timeout"),
    ]
    for path, body in steps:
        answer = await ingest.client.post(path, content=body, headers=ua)
        assert answer.status_code in (200, 201), (path, answer.text)
    runs = await stored_events(ingest.bus, RunReported)
    assert [(r.job, r.status, r.run_id) for r in runs] == [
        ("backups", "started", first), ("backups", "success", first),
        ("backups", "started", second), ("backups", "failure", second)]
    assert runs[1].log_excerpt == "archive created\nDuration: 5 s"
    assert runs[3].log_excerpt == "Repository lock timeout"
    assert {r.client_name for r in runs} == {"runitor/v1.4.1"}
    (log,) = await stored_events(ingest.bus, RunLogged)
    assert (log.run_id, log.log_excerpt) == (first, "Creating archive...")


async def test_retried_ping_with_the_same_rid_is_stored_once(ingest: Ingest) -> None:
    path = f"/ping/{ingest.a.ping_key}/fail?rid={uuid.uuid4()}"
    for _ in range(2):
        assert (await ingest.client.get(path)).status_code == 200
    assert len(await stored_events(ingest.bus, RunReported)) == 1


# "$" in a regex also matches before a final newline: 128 characters and a newline once gave a
# 500 on PostgreSQL (too long for the column) and created a job named "job\n" on SQLite.
BAD_NAMES = ["x" * 128 + "\n", "job\n", "job\r\n", "jo\tb", "job\x00", "job\x7f", "jöb", "x" * 129]


async def test_bad_job_names_are_refused_by_every_path(ingest_both_db: Ingest) -> None:
    ingest, key = ingest_both_db, ingest_both_db.a.ping_key
    for name in BAD_NAMES:
        quoted = urllib.parse.quote(name, safe="")
        for path in (f"/ping/{key}/{quoted}?create=1", f"/ping/{key}/{quoted}/fail?create=1"):
            answer = await ingest.client.get(path)
            assert (answer.status_code, answer.text) == (400, "invalid url format"), (name, path)
        schedule = await ingest.client.put(f"/v1/jobs/{quoted}/schedule", headers=ingest.auth(
            ingest.a), json={"interval_seconds": 600})
        run = await ingest.post_run({"job": name, "status": "success"})
        usage = await ingest.client.post("/v1/usage", headers=ingest.auth(ingest.a),
                                         json={"bytes_used": 1, "jobs": {name: 1}})
        assert (schedule.status_code, run.status_code, usage.status_code) == (422, 422, 422), name
    with ingest.db.session() as session:
        assert session.exec(select(Job.name)).all() == []
    assert await stored_events(ingest.bus) == []
