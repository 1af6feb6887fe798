"""POST /v1/usage and POST /v1/heartbeat."""

from __future__ import annotations

from shared.bus import Bus
from shared.db import Database
from shared.events import HeartbeatReported, UsageReported
from tests.ingest.support import Ingest, running_ingest, stored_events
from tests.support import make_account


async def test_usage_defaults_to_the_accounts_quota(sqlite_db: Database, bus: Bus) -> None:
    async with running_ingest(sqlite_db, bus) as ingest:
        limited = make_account(sqlite_db, name="limited", quota_bytes=10_000)
        auth = ingest.auth(limited)
        own = await ingest.client.post(
            "/v1/usage", json={"bytes_used": 5000, "jobs": {"db": 3000, "files": 2000}},
            headers=auth)
        given = await ingest.client.post(
            "/v1/usage", json={"bytes_used": 5000, "quota_bytes": 8000}, headers=auth)
        assert own.status_code == given.status_code == 202, own.text
        events = await stored_events(bus, UsageReported)
        assert [(e.bytes_used, e.quota_bytes) for e in events] == [(5000, 10_000), (5000, 8000)]
        assert events[0].jobs == {"db": 3000, "files": 2000}
        assert events[0].tenant == limited.account.tenant()


async def test_bad_usage_is_refused(ingest: Ingest) -> None:
    for body in ({"bytes_used": -1}, {"bytes_used": 1, "jobs": {"../x": 1}}, {}):
        answer = await ingest.client.post("/v1/usage", json=body, headers=ingest.auth(ingest.a))
        assert answer.status_code == 422, body


async def test_heartbeat(ingest: Ingest) -> None:
    body = {"client_name": "backstop-agent", "client_version": "0.3.1",
            "hostname": "nas01", "os": "Linux 6.1"}
    answer = await ingest.client.post("/v1/heartbeat", json=body, headers=ingest.auth(ingest.b))
    assert answer.status_code == 202
    (event,) = await stored_events(ingest.bus, HeartbeatReported)
    assert event.model_dump(include=set(body)) == body
    assert event.tenant == ingest.b.account.tenant()
    missing = await ingest.client.post(
        "/v1/heartbeat", json={"client_name": "x"}, headers=ingest.auth(ingest.b))
    assert missing.status_code == 422 and "client_version" in missing.text
