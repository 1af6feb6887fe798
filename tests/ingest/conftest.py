"""Ingest test fixtures: the real app over real NATS and a real database, called in-process
(built by :func:`tests.ingest.support.running_ingest`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.bus import Bus
from shared.db import Database
from tests.ingest.support import Ingest, running_ingest


@pytest.fixture
async def ingest(sqlite_db: Database, bus: Bus) -> AsyncIterator[Ingest]:
    async with running_ingest(sqlite_db, bus) as running:
        yield running


@pytest.fixture
async def ingest_both_db(db: Database, bus: Bus) -> AsyncIterator[Ingest]:
    """For tests whose subject includes the data layer: runs on SQLite and PostgreSQL."""
    async with running_ingest(db, bus) as running:
        yield running
