"""Logging in and out, and what a session cookie looks like."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.portal.users import Role
from shared.db import Database
from tests.portal.site import PASSWORD, add_user, csrf_token, log_in


def test_pages_need_a_login(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    answer = client.get("/jobs/abc?page=2", follow_redirects=False)
    assert answer.headers["location"] == "/login?next=/jobs/abc%3Fpage%3D2"


def test_login_then_logout(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "OP@example.com")
    page = client.get("/")
    assert page.status_code == 200
    assert "op@example.com" in page.text
    out = client.post("/logout", data={"csrf_token": csrf_token(page.text)},
                      follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    form = client.get("/login")
    answer = client.post("/login", data={"email": "op@example.com", "password": PASSWORD + "x",
                                         "csrf_token": csrf_token(form.text)})
    assert answer.status_code == 401
    assert "do not match" in answer.text


def test_the_cookie_key_comes_from_the_setting_or_the_installation_keys(tmp_path: Path) -> None:
    from services.portal.sessions import signing_key
    from shared.config import PortalSettings
    from shared.secretbox import new_key

    assert signing_key(PortalSettings(portal_session_secret="s" * 40)) == b"s" * 40
    key = new_key()
    derived = signing_key(PortalSettings(secret_keys=f"{key},{new_key()}"))
    assert len(derived) == 32 and derived != key.encode()
    assert derived == signing_key(PortalSettings(secret_keys=key))  # every replica agrees
    # Without either, the data dir's key file (made on first need, as for sealed secrets).
    local = PortalSettings(data_dir=tmp_path)
    assert signing_key(local) == signing_key(local)
    assert (tmp_path / "secret.key").exists()
