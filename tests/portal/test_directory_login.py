"""Logging in through the LDAP directory (a real slapd): the bind as the user is the check."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.portal.directory_login import DirectoryLogin, Grant, parse_role
from services.portal.users import Role
from shared.db import Database
from tests.portal.site import Tenants, add_user, csrf_token, portal_app, settings
from tests.slapd import SUFFIX, Slapd

DIRECTORY_PASSWORD = "directory secret 1"


def add_person(directory: Slapd, uid: str, mail: str, *, role: str | None = None) -> None:
    attributes = {"uid": uid, "cn": uid, "sn": uid, "mail": [mail],
                  "userPassword": DIRECTORY_PASSWORD}
    if role is not None:
        attributes["employeeType"] = role
    with directory.admin() as conn:
        assert conn.add(f"uid={uid},ou=people,{SUFFIX}", ["inetOrgPerson"], attributes), \
            conn.result


def client_for(db: Database, tmp_path: Path, directory: Slapd, **overrides: object
               ) -> TestClient:
    return TestClient(portal_app(db, tmp_path, None, portal_ldap_url=directory.url,
                                 portal_ldap_role_attribute="employeeType", **overrides))


def attempt(client: TestClient, email: str, password: str) -> int:
    token = csrf_token(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token},
                       follow_redirects=False).status_code


def test_a_directory_user_with_a_portal_row_logs_in_with_the_directory_password(
    sqlite_db: Database, tmp_path: Path, directory: Slapd, three_tenants: Tenants,
) -> None:
    add_person(directory, "alice", "alice@acme.example")
    with sqlite_db.session() as session:
        from services.portal import users
        users.add(session, "alice@acme.example", Role.customer, None,
                  reseller="Reseller One", customer="Acme")
    with client_for(sqlite_db, tmp_path, directory) as client:
        assert attempt(client, "alice@acme.example", "not the password") == 401
        assert attempt(client, "alice@acme.example", "") == 400  # the form needs a password
        assert attempt(client, "alice@acme.example", DIRECTORY_PASSWORD) == 303
        page = client.get("/")
        assert "alice@acme.example" in page.text
        assert client.get(f"/accounts/{three_tenants.other.account.id}").status_code == 404


def test_the_directory_role_attribute_grants_a_role_to_users_without_a_row(
    sqlite_db: Database, tmp_path: Path, directory: Slapd, three_tenants: Tenants,
) -> None:
    acme = three_tenants.acme
    add_person(directory, "bob", "bob@acme.example",
               role=f"customer:{acme.reseller.id}:{acme.customer.id}:read-only")
    add_person(directory, "carol", "carol@nowhere.example")  # no role: no login
    with client_for(sqlite_db, tmp_path, directory) as client:
        assert attempt(client, "carol@nowhere.example", DIRECTORY_PASSWORD) == 401
        assert attempt(client, "bob@acme.example", DIRECTORY_PASSWORD) == 303
        assert "bob@acme.example (read-only)" in client.get("/").text
        assert client.get(f"/accounts/{acme.account.id}").status_code == 200
        assert client.get(f"/accounts/{three_tenants.globex.account.id}").status_code == 404


def test_a_local_password_still_works_and_filter_values_are_escaped(
    sqlite_db: Database, tmp_path: Path, directory: Slapd,
) -> None:
    add_user(sqlite_db, "op@example.com", Role.operator)
    add_person(directory, "mallory", "mallory@example.com", role="operator")
    with client_for(sqlite_db, tmp_path, directory) as client:
        assert attempt(client, "op@example.com", "correct horse battery") == 303
    with client_for(sqlite_db, tmp_path, directory) as client:
        # "*" would match every entry if it reached the filter unescaped.
        assert attempt(client, "*", DIRECTORY_PASSWORD) == 401
        assert attempt(client, "mallory@example.com)(mail=*", DIRECTORY_PASSWORD) == 401


def test_an_empty_password_is_never_an_anonymous_bind(directory: Slapd, tmp_path: Path) -> None:
    add_person(directory, "erin", "erin@example.com", role="operator")
    login = DirectoryLogin(settings(tmp_path, portal_ldap_url=directory.url))
    assert login.authenticate("erin@example.com", "") is None
    found = login.authenticate("erin@example.com", DIRECTORY_PASSWORD)
    assert found is not None and found.grant is None  # no role attribute configured


def test_a_directory_that_does_not_answer_is_503_not_a_wrong_password(
    sqlite_db: Database, tmp_path: Path, directory: Slapd,
) -> None:
    add_person(directory, "dave", "dave@example.com", role="operator")
    url = directory.url
    directory.stop()
    app = portal_app(sqlite_db, tmp_path, portal_ldap_url=url, portal_ldap_timeout=1,
                     portal_ldap_role_attribute="employeeType")
    with TestClient(app) as client:
        assert attempt(client, "dave@example.com", DIRECTORY_PASSWORD) == 503


@pytest.mark.parametrize(("value", "grant"), [
    ("operator", Grant(Role.operator)),
    ("reseller:r1", Grant(Role.reseller, "r1")),
    ("customer:r1:c1:read-only", Grant(Role.customer, "r1", "c1", read_only=True)),
    ("customer:r1", None), ("admin", None), ("", None),
])
def test_role_attribute_values(value: str, grant: Grant | None) -> None:
    assert parse_role(value) == grant
