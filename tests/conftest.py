"""Fixtures that start the real servers (nats-server, PostgreSQL databases, SMTP) on free ports.

PostgreSQL comes from ``BACKSTOP_TEST_POSTGRES_URL`` (default: the local server). When it does
not answer, PostgreSQL-backed tests are skipped locally but fail under CI, so a missing server
can never turn the suite green by accident.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from nats.js.errors import ServerError
from sqlalchemy.engine import make_url

from shared.bus import Bus
from shared.db import Database
from shared.natsd import EmbeddedNats, free_port
from shared.streams import ALL_STREAMS
from tests.slapd import Slapd
from tests.support import SmtpSink

POSTGRES_URL = os.environ.get(
    "BACKSTOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


# --- NATS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A connected bus on empty streams: every test starts with no messages and no consumers."""
    bus = Bus(nats_url)
    await bus.connect()
    await _reset_streams(bus)
    yield bus
    await bus.close()


async def _reset_streams(bus: Bus) -> None:
    for spec in ALL_STREAMS:
        await bus.js.delete_stream(spec.name)
    # nats-server removes a deleted stream's files in the background: creating it again at once
    # can fail with "error creating store for stream" (seen once in CI), so give it a moment.
    for _ in range(20):
        try:
            await bus.ensure_streams(ALL_STREAMS)
            return
        except ServerError:
            await asyncio.sleep(0.1)
    await bus.ensure_streams(ALL_STREAMS)


# --- databases -------------------------------------------------------------------------------


def _postgres_admin_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_available() -> bool:
    try:
        with psycopg.connect(_postgres_admin_dsn(), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    available = _postgres_available()
    if not available and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI and did not answer at {POSTGRES_URL}")
    return available


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not postgres_available:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    name = f"backstop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'backstop.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def _migrated(url: str) -> Iterator[Database]:
    database = Database(url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database on both backends."""
    yield from _migrated(db_url)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database, for tests whose subject is not the data layer."""
    yield from _migrated(sqlite_url)


# --- SMTP ------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, SmtpSink]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, sink
    controller.stop()



# --- slapd -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not os.path.exists("/usr/sbin/slapd"):
        if os.environ.get("CI"):
            pytest.fail("slapd is required under CI (apt-get install slapd)")
        pytest.skip("slapd is not installed (apt-get install slapd)")
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    server.seed_tree()
    yield server
    server.stop()


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd of one's own, for tests that stop and restart it."""
    server = Slapd(tmp_path / "slapd")
    server.start()
    server.seed_tree()
    yield server
    server.stop()
