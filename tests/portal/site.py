"""A portal for tests: its app on a migrated database, users of each role, and logging in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.portal import users
from services.portal.app import create_app
from services.portal.users import Role
from shared.bus import Bus
from shared.config import PortalSettings
from shared.db import Database
from shared.tenancy import IssuedAccount
from tests.support import make_account

PASSWORD = "correct horse battery"
SECRET = "test-session-secret-" + "x" * 20


def settings(data_dir: Path, **overrides: object) -> PortalSettings:
    return PortalSettings(data_dir=data_dir, portal_session_secret=SECRET,
                          **overrides)  # type: ignore[arg-type]


def portal_app(db: Database, data_dir: Path, bus: Bus | None = None,
               **overrides: object) -> FastAPI:
    return create_app(settings(data_dir, **overrides), db, bus)


@dataclass
class Tenants:
    """Two resellers; the first with two customers: the scopes the security tests cross."""

    acme: IssuedAccount  # Reseller One / Acme
    globex: IssuedAccount  # Reseller One / Globex
    other: IssuedAccount  # Reseller Two / Initech


def tenants(db: Database) -> Tenants:
    return Tenants(
        make_account(db, reseller="Reseller One", customer="Acme", name="fileserver"),
        make_account(db, reseller="Reseller One", customer="Globex", name="mailserver"),
        make_account(db, reseller="Reseller Two", customer="Initech", name="erp"),
    )


def add_user(db: Database, email: str, role: Role, *, reseller: str | None = None,
             customer: str | None = None, read_only: bool = False,
             password: str = PASSWORD) -> None:
    with db.session() as session:
        users.add(session, email, role, password, reseller=reseller, customer=customer,
                  read_only=read_only)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    form = client.get("/login")
    answer = client.post("/login", data={"email": email, "password": password, "next": "/",
                                          "csrf_token": csrf_token(form.text)},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
