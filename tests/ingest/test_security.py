"""Tenant isolation, revocation, body limits, rate limits, and an event store that is down."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.cli.tokens import revoke
from services.ingest import auth
from services.ingest.auth import TokenResolver
from shared.bus import Bus
from shared.credentials import digest
from shared.db import Database
from shared.events import RunReported
from shared.natsd import EmbeddedNats
from shared.tenancy import ApiToken
from tests.ingest.support import Ingest, running_ingest, stored_events
from tests.support import eventually, make_account


async def test_token_of_a_writes_only_to_a(ingest: Ingest) -> None:
    """A job name is always read within the token's account: B's 'db' is not reachable by A."""
    await ingest.post_run({"job": "db", "status": "success"}, ingest.b)
    await ingest.post_run({"job": "db", "status": "failure"}, ingest.a)
    events = await stored_events(ingest.bus, RunReported)
    assert [(e.tenant.account, e.status) for e in events] == [
        (ingest.b.account.id, "success"), (ingest.a.account.id, "failure")]


async def test_ping_key_of_a_cannot_touch_bs_jobs(ingest: Ingest) -> None:
    await ingest.post_run({"job": "only-b", "status": "success"}, ingest.b)
    await ingest.post_run({"job": "only-a", "status": "success"}, ingest.a)
    a_on_b = await ingest.client.get(f"/ping/{ingest.a.ping_key}/only-b/fail")
    b_on_a = await ingest.client.get(f"/ping/{ingest.b.ping_key}/only-a/fail")
    assert (a_on_b.status_code, b_on_a.status_code) == (404, 404)
    created = await ingest.client.get(f"/ping/{ingest.a.ping_key}/only-b/fail?create=1")
    assert created.status_code == 201  # A gets its own job of that name, B's is untouched
    events = await stored_events(ingest.bus, RunReported)
    failures = [e for e in events if e.status == "failure"]
    assert [(e.tenant.account, e.job) for e in failures] == [(ingest.a.account.id, "only-b")]


async def test_revoked_token_stops_working(ingest: Ingest) -> None:
    body = {"job": "db", "status": "success"}
    assert (await ingest.post_run(body)).status_code == 202
    with ingest.db.session() as session:
        assert revoke(session, ingest.a.token) == 1
    answer = await ingest.post_run(body)
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]
    assert (await ingest.post_run(body, ingest.b)).status_code == 202


async def test_too_large_bodies_are_413(sqlite_db: Database, bus: Bus) -> None:
    async with running_ingest(sqlite_db, bus, ingest_max_body_bytes=2048) as ingest:
        big = {"job": "db", "status": "success", "log_excerpt": "x" * 4096}
        declared = await ingest.post_run(big)

        async def chunks(count: int) -> AsyncIterator[bytes]:
            for _ in range(count):
                yield b"y" * 1024

        chunked = await ingest.client.post(f"/ping/{ingest.a.ping_key}", content=chunks(10))
        assert declared.status_code == chunked.status_code == 413
        assert "2048" in declared.json()["message"]
        small = await ingest.client.post(f"/ping/{ingest.a.ping_key}", content=chunks(1))
        assert small.status_code == 200
        assert len(await stored_events(bus)) == 1


async def test_rate_limit_is_per_token(sqlite_db: Database, bus: Bus) -> None:
    async with running_ingest(sqlite_db, bus, ingest_rate_limit=1, ingest_rate_burst=3) as ingest:
        body = {"job": "db", "status": "success"}
        codes = [(await ingest.post_run(body)).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        limited = await ingest.post_run(body)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        # Another client is unaffected by A's flood, and so is A's ping key.
        assert (await ingest.post_run(body, ingest.b)).status_code == 202
        assert (await ingest.client.get(f"/ping/{ingest.a.ping_key}")).status_code == 200


async def test_event_store_down_is_503(sqlite_db: Database, tmp_path: Path) -> None:
    nats = EmbeddedNats(tmp_path / "nats")
    nats.start()
    bus = Bus(nats.url)
    await bus.connect()
    try:
        async with running_ingest(sqlite_db, bus, ingest_publish_timeout=0.5) as ingest:
            assert (await ingest.post_run({"job": "db", "status": "success"})).status_code == 202
            nats.kill()
            answer = await ingest.post_run({"job": "db", "status": "success"})
            assert answer.status_code == 503 and answer.headers["Retry-After"]
            ping = await ingest.client.get(f"/ping/{ingest.a.ping_key}")
            assert ping.status_code == 503
            batch = await ingest.client.post(
                "/v1/runs:batch", json={"runs": [{"job": "db", "status": "success"}]},
                headers=ingest.auth(ingest.a))
            assert batch.json()["results"][0]["status"] == "unavailable"
    finally:
        await bus.close()
        nats.stop()


async def test_token_cache_shares_lookups_and_expires(sqlite_db: Database) -> None:
    issued = make_account(sqlite_db, name="cached")
    resolver = TokenResolver(sqlite_db, ttl=0.3)
    lookups = count_database_work(sqlite_db)
    callers = await asyncio.gather(*(resolver.resolve(issued.token) for _ in range(20)))
    assert lookups() == 1 and {c.tenant if c else None for c in callers} == {
        issued.account.tenant()}
    with sqlite_db.session() as session:
        revoke(session, issued.token)
    assert await resolver.resolve(issued.token) is not None  # cached for up to ttl
    await asyncio.sleep(0.35)
    assert await resolver.resolve(issued.token) is None
    assert lookups() == 2


async def test_a_token_in_use_is_refreshed_before_it_expires(sqlite_db: Database) -> None:
    issued = make_account(sqlite_db, name="busy")
    resolver = TokenResolver(sqlite_db, ttl=1.0)
    lookups = count_database_work(sqlite_db)
    assert await resolver.resolve(issued.token) is not None
    await asyncio.sleep(0.8)  # in the entry's last quarter
    assert await resolver.resolve(issued.token) is not None  # served from the cache...
    await eventually(lambda: lookups() == 2)  # ...while it is looked up again in the background
    await asyncio.sleep(0.3)  # past the first lookup's expiry
    assert await resolver.resolve(issued.token) is not None
    assert lookups() == 2  # no request waited for the database
    with sqlite_db.session() as session:
        revoke(session, issued.token)
    await asyncio.sleep(1.1)  # a revocation still takes effect within the ttl
    assert await resolver.resolve(issued.token) is None


def count_database_work(db: Database) -> Callable[[], int]:
    """Counts the units of work run through ``db.run`` from now on (the resolvers' lookups)."""
    count = 0
    original = db.run

    async def counting_run(work, *args, **options):  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1
        return await original(work, *args, **options)

    db.run = counting_run  # type: ignore[method-assign]
    return lambda: count


async def test_failed_authentications_are_limited_per_client_address(
        sqlite_db: Database, bus: Bus) -> None:
    """300 invalid tokens used to get 300 answers 401, each a database lookup."""
    async with running_ingest(sqlite_db, bus, ingest_token_cache_seconds=5,
                              ingest_auth_failure_limit=0.01,
                              ingest_auth_failure_burst=10) as ingest:
        body = {"job": "db", "status": "success"}
        assert (await ingest.post_run(body)).status_code == 202  # A's token is now cached
        lookups = count_database_work(sqlite_db)
        guesses = [await ingest.client.post("/v1/runs", json=body, headers={
            "Authorization": f"Bearer bst_{secrets.token_urlsafe(32)}"}) for _ in range(300)]
        codes = [answer.status_code for answer in guesses]
        assert codes == [401] * 10 + [429] * 290
        assert lookups() == 10  # a 429 is answered before the database is asked
        assert int(guesses[-1].headers["Retry-After"]) >= 1
        assert "failed authentications" in guesses[-1].json()["message"]
        # Ping keys count against the same address, and a repeated guess as much as a new one.
        ping = await ingest.client.get(f"/ping/{secrets.token_urlsafe(16)}")
        assert ping.status_code == 429 and lookups() == 10
        # A's token is cached as valid: A keeps working from the guesser's address...
        assert (await ingest.post_run(body)).status_code == 202
        # ...and so does B, not cached yet, from another address.
        async with ingest.client_from("192.0.2.7") as elsewhere:
            assert (await elsewhere.post("/v1/runs", json=body,
                                         headers=ingest.auth(ingest.b))).status_code == 202
            assert (await elsewhere.get(f"/ping/{ingest.b.ping_key}")).status_code == 200
        # A credential not cached yet waits at the guesser's address, valid or not.
        before = lookups()
        assert (await ingest.client.get(f"/ping/{ingest.a.ping_key}")).status_code == 429
        assert lookups() == before


async def test_ipv6_clients_are_counted_per_64(sqlite_db: Database, bus: Bus) -> None:
    async with running_ingest(sqlite_db, bus, ingest_auth_failure_limit=0.01,
                              ingest_auth_failure_burst=2) as ingest:
        codes = []
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3",
                     "2001:db8:1:3::1"):
            async with ingest.client_from(host) as client:
                codes.append((await client.get(f"/ping/{secrets.token_urlsafe(16)}")).status_code)
        assert codes == [404, 404, 429, 404]


async def test_unknown_credentials_are_cached_briefly(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_NEGATIVE_SECONDS", 0.3)
    issued = make_account(sqlite_db, name="late")
    resolver = TokenResolver(sqlite_db, ttl=5.0)
    lookups = count_database_work(sqlite_db)
    token = f"bst_{secrets.token_urlsafe(32)}"
    assert [await resolver.resolve(token) for _ in range(3)] == [None] * 3
    assert lookups() == 1
    with sqlite_db.session() as session:  # the token is issued after it was tried
        session.add(ApiToken(account_id=issued.account.id, token_hash=digest(token)))
    assert await resolver.resolve(token) is None  # still the cached answer
    await asyncio.sleep(0.35)
    assert (await resolver.resolve(token)) is not None
    assert lookups() == 2


async def test_guesses_do_not_push_valid_credentials_out_of_the_cache(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache used to empty itself when full, sending every client back to the database."""
    monkeypatch.setattr(auth, "MAX_CACHED", 50)
    monkeypatch.setattr(auth, "MAX_UNKNOWN", 50)
    issued = make_account(sqlite_db, name="hot")
    resolver = TokenResolver(sqlite_db, ttl=60.0)
    lookups = count_database_work(sqlite_db)
    assert await resolver.resolve(issued.token) is not None
    for _ in range(300):
        assert await resolver.resolve(f"bst_{secrets.token_urlsafe(32)}") is None
        assert await resolver.resolve(issued.token) is not None
    assert lookups() == 1 + 300
