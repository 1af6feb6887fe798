"""Fixtures of the portal tests: a migrated database with three tenants, the app, a client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.async_api import Browser, async_playwright

from shared.bus import Bus
from shared.db import Database
from tests.portal.site import RunningPortal, Tenants, portal_app, tenants
from tests.slapd import Slapd


@pytest.fixture
def three_tenants(sqlite_db: Database) -> Tenants:
    return tenants(sqlite_db)


@pytest.fixture
def client(sqlite_db: Database, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(portal_app(sqlite_db, tmp_path)) as client:
        yield client


# Debian's chromium (never Playwright's own download), headless, quiet.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def running_portal(sqlite_db: Database, tmp_path: Path, bus: Bus
                         ) -> AsyncIterator[RunningPortal]:
    """The portal served on a free port (its live feed on the test's bus) until the test ends."""
    portal = RunningPortal(sqlite_db, tmp_path, bus)
    await portal.start()
    try:
        yield portal
    finally:
        await portal.stop()


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Slapd]:
    """A real slapd (the notifier's test directory) with the people the portal logs in."""
    if not os.path.exists("/usr/sbin/slapd"):
        if os.environ.get("CI"):
            pytest.fail("slapd is required under CI (apt-get install slapd)")
        pytest.skip("slapd is not installed (apt-get install slapd)")
    server = Slapd(tmp_path / "slapd")
    server.start()
    server.seed_tree()
    yield server
    server.stop()
