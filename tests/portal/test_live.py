"""Live alerts: the feed hands each viewer only the alerts of its scope, as Server-Sent Events
from a real nats-server."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi.testclient import TestClient

from services.portal.live import AlertFeed
from services.portal.users import Role
from shared.bus import Bus
from shared.db import Database
from shared.events import AlertChanged, Tenant, utcnow
from shared.scopes import Scope
from tests.portal.site import PASSWORD, RunningPortal, Tenants, add_user, csrf_token


def alert(tenant: Tenant, summary: str) -> AlertChanged:
    return AlertChanged(tenant=tenant, fingerprint="a" * 32, kind="failed_run", state="firing",
                        severity="error", sequence=1, job="nightly", summary=summary,
                        first_seen=utcnow(), last_changed=utcnow())


async def test_each_listener_gets_its_scope_only(bus: Bus, three_tenants: Tenants) -> None:
    t = three_tenants
    feed = AlertFeed(bus)
    stop = asyncio.Event()
    follower = asyncio.create_task(feed.run(stop))
    await asyncio.wait_for(feed.following.wait(), 10)
    acme = Scope.of_customer(t.acme.reseller.id, t.acme.customer.id)
    reseller = Scope.of_reseller(t.acme.reseller.id)
    with feed.listen(acme) as mine, feed.listen(reseller) as staff, \
            feed.listen(Scope.everything()) as everything:
        for issued, summary in ((t.other, "other"), (t.globex, "globex"), (t.acme, "acme")):
            await bus.publish(alert(issued.account.tenant(), summary))
        got = [await asyncio.wait_for(q.get(), 5) for q in (mine, staff, staff)]
        assert [m["summary"] for m in got] == ["acme", "globex", "acme"]
        assert [(await asyncio.wait_for(everything.get(), 5))["summary"]
                for _ in range(3)] == ["other", "globex", "acme"]
        assert mine.empty() and staff.empty()
    stop.set()
    await follower


async def test_the_live_stream_needs_a_login_and_streams_events(
    bus: Bus, sqlite_db: Database, three_tenants: Tenants, running_portal: RunningPortal,
) -> None:
    add_user(sqlite_db, "it@acme.example", Role.customer, reseller="Reseller One",
             customer="Acme")
    async with httpx.AsyncClient(base_url=running_portal.url) as client:
        assert (await client.get("/live")).status_code == 401
        form = await client.get("/login")
        await client.post("/login", data={"email": "it@acme.example", "password": PASSWORD,
                                          "csrf_token": csrf_token(form.text)})
        async with client.stream("GET", "/live") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            await asyncio.sleep(0.2)  # the listener is registered
            await bus.publish(alert(three_tenants.other.account.tenant(), "not yours"))
            await bus.publish(alert(three_tenants.acme.account.tenant(), "yours"))
            received: list[dict[str, object]] = []
            while len(received) < 1:
                line = await asyncio.wait_for(anext(lines), 5)
                if line.startswith("data: "):
                    received.append(json.loads(line.removeprefix("data: ")))
            assert [m["summary"] for m in received] == ["yours"]
            assert received[0]["url"] == f"/alerts/{'a' * 32}"


def test_live_without_a_session_is_401(client: TestClient) -> None:
    assert client.get("/live").status_code == 401
