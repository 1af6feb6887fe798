"""Fixtures of the portal tests: a migrated database with three tenants, the app, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.db import Database
from tests.portal.site import Tenants, portal_app, tenants


@pytest.fixture
def three_tenants(sqlite_db: Database) -> Tenants:
    return tenants(sqlite_db)


@pytest.fixture
def client(sqlite_db: Database, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(portal_app(sqlite_db, tmp_path)) as client:
        yield client
