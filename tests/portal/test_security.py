"""What a user may see and do: scope (ids from other tenants are 404), CSRF, escaping, login
rate limits, session cookies."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.portal.users import Role
from shared.db import Database
from shared.tenancy import Reseller
from tests.portal.site import (
    PASSWORD,
    Tenants,
    add_user,
    csrf_token,
    log_in,
    portal_app,
    seed_alert,
    seed_job,
)


@pytest.fixture
def seeded(sqlite_db: Database, three_tenants: Tenants) -> dict[str, str]:
    t = three_tenants
    ids = {
        "acme_job": seed_job(sqlite_db, t.acme, "nightly", runs=3, failures=1),
        "globex_job": seed_job(sqlite_db, t.globex, "nightly", runs=3),
        "other_job": seed_job(sqlite_db, t.other, "nightly", runs=3),
    }
    for key, issued in (("acme", t.acme), ("globex", t.globex), ("other", t.other)):
        alert = seed_alert(sqlite_db, issued, "nightly")
        ids[f"{key}_alert"] = alert.id
        ids[f"{key}_fingerprint"] = alert.fingerprint
        ids[f"{key}_account"] = issued.account.id
    add_user(sqlite_db, "op@example.com", Role.operator)
    add_user(sqlite_db, "staff@one.example", Role.reseller, reseller="Reseller One")
    add_user(sqlite_db, "it@acme.example", Role.customer, reseller="Reseller One",
             customer="Acme")
    return ids


def pages_of(ids: dict[str, str], tenant: str) -> list[str]:
    return [f"/jobs/{ids[f'{tenant}_job']}", f"/accounts/{ids[f'{tenant}_account']}",
            f"/alerts/{ids[f'{tenant}_alert']}", f"/alerts/{ids[f'{tenant}_fingerprint']}"]


@pytest.mark.parametrize(("email", "visible", "hidden"), [
    ("it@acme.example", ["acme"], ["globex", "other"]),
    ("staff@one.example", ["acme", "globex"], ["other"]),
    ("op@example.com", ["acme", "globex", "other"], []),
])
def test_ids_of_other_tenants_are_not_found(
    client: TestClient, seeded: dict[str, str], email: str, visible: list[str],
    hidden: list[str],
) -> None:
    log_in(client, email)
    for tenant in visible:
        for path in pages_of(seeded, tenant):
            assert client.get(path).status_code == 200, path
    for tenant in hidden:
        for path in pages_of(seeded, tenant):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "nothing you may see" in answer.text
    overview = client.get("/").text
    assert overview.count('href="/jobs/') == len(visible)


def test_unknown_paths_are_an_error_page_not_a_stack(client: TestClient,
                                                     seeded: dict[str, str]) -> None:
    log_in(client, "op@example.com")
    answer = client.get("/no/such/page")
    assert answer.status_code == 404
    assert "<h1>Not found</h1>" in answer.text
    bad = client.get("/?limit=100000")
    assert bad.status_code == 400
    assert "not valid" in bad.text
    assert client.get("/?state=sleeping").status_code == 400
    assert client.get(f"/jobs/{seeded['acme_job']}?before=garbage").status_code == 400


def test_form_posts_without_a_valid_csrf_token_are_refused(
    client: TestClient, sqlite_db: Database, seeded: dict[str, str],
) -> None:
    form = client.get("/login")
    data = {"email": "op@example.com", "password": PASSWORD}
    assert client.post("/login", data=data).status_code == 403
    assert client.post("/login", data={**data, "csrf_token": "forged"}).status_code == 403
    # A token of another visitor's seed does not fit this visitor's cookie.
    with TestClient(client.app) as other:
        foreign = csrf_token(other.get("/login").text)
    assert client.post("/login", data={**data, "csrf_token": foreign}).status_code == 403
    log_in(client, "op@example.com")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": "x"}).status_code == 403
    assert client.get("/").status_code == 200  # still logged in
    assert client.post("/logout", data={"csrf_token": csrf_token(form.text)},
                       follow_redirects=False).status_code == 303


def test_stored_markup_is_shown_escaped(client: TestClient, sqlite_db: Database,
                                        three_tenants: Tenants) -> None:
    job = seed_job(sqlite_db, three_tenants.acme, "<script>alert(1)</script>", runs=0,
                   name_unchecked=True)
    alert = seed_alert(sqlite_db, three_tenants.acme, "<script>alert(1)</script>",
                       summary="Backup job <script>alert(2)</script> failed")
    with sqlite_db.session() as session:
        reseller = session.get(Reseller, three_tenants.acme.reseller.id)
        assert reseller is not None
        reseller.name = '<img src=x onerror="alert(3)">'
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    for path in ("/", f"/jobs/{job}"):
        html = client.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert" not in html
    alert_page = client.get(f"/alerts/{alert.fingerprint}").text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in alert_page
    assert "<script>alert" not in alert_page and "<img src=x" not in alert_page


def test_wrong_passwords_are_rate_limited_per_account_and_address(
    sqlite_db: Database, tmp_path: Path,
) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    add_user(sqlite_db, "other@example.com", Role.operator)
    app = portal_app(sqlite_db, tmp_path, portal_login_failure_burst=5,
                     portal_login_failures_per_minute=1)
    with TestClient(app) as client:
        token = csrf_token(client.get("/login").text)

        def attempt(email: str, password: str) -> int:
            return client.post("/login", data={"email": email, "password": password,
                                               "csrf_token": token},
                               follow_redirects=False).status_code

        assert [attempt("op@example.com", "wrong password!") for _ in range(5)] == [401] * 5
        limited = client.post("/login", data={"email": "op@example.com", "password": "x" * 12,
                                              "csrf_token": token})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert "Too many failed logins" in limited.text
        # The right password does not get through either: nothing is checked while limited.
        assert attempt("op@example.com", PASSWORD) == 429
        # The address has spent its budget too: another account from it waits as well.
        assert attempt("other@example.com", PASSWORD) == 429


def test_the_account_budget_holds_across_addresses(sqlite_db: Database, tmp_path: Path) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    app = portal_app(sqlite_db, tmp_path, portal_login_failure_burst=3,
                     portal_login_failures_per_minute=1)
    statuses = []
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"):
        with TestClient(app, client=(address, 50000)) as client:
            token = csrf_token(client.get("/login").text)
            statuses.append(client.post("/login", data={
                "email": "op@example.com", "password": "wrong password!", "csrf_token": token,
            }).status_code)
    assert statuses == [401, 401, 401, 429]


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookie_flags(sqlite_db: Database, tmp_path: Path, secure: bool) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    app = portal_app(sqlite_db, tmp_path, portal_secure_cookies=secure)
    with TestClient(app, base_url="https://testserver") as client:
        form = client.get("/login")
        seed_cookie = form.headers["set-cookie"]
        answer = client.post("/login", data={"email": "op@example.com", "password": PASSWORD,
                                             "csrf_token": csrf_token(form.text)},
                             follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("backstop_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert ("secure" in attributes) is secure
    assert "httponly" in seed_cookie.lower() and "samesite=lax" in seed_cookie.lower()
    assert ("secure" in seed_cookie.lower()) is secure


def test_a_forged_or_outdated_session_is_no_login(client: TestClient, sqlite_db: Database) -> None:
    from services.portal import users

    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    value = client.cookies["backstop_session"]
    client.cookies.set("backstop_session", value[:-2] + ("A" if value[-1] != "A" else "B") + "x")
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("backstop_session", value)
    assert client.get("/", follow_redirects=False).status_code == 200
    with sqlite_db.session() as session:
        users.set_password(session, "op@example.com", "another good password")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_redirects_only_within_the_portal(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    form = client.get("/login")
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"),
                             ("/\\evil.example", "/"), ("/jobs/x?a=1", "/jobs/x?a=1")):
        answer = client.post("/login", data={"email": "op@example.com", "password": PASSWORD,
                                             "next": target,
                                             "csrf_token": csrf_token(form.text)},
                             follow_redirects=False)
        assert answer.headers["location"] == expected


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
