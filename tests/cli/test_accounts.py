"""``backstop accounts`` through the real command line, on both database backends."""

import json
import re
import uuid

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.db import Database
from shared.tenancy import account_for_ping_key, account_for_token
from tests.slapd import SUFFIX, WRITER_DN, WRITER_PW, Slapd

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    return db_url


def create(*extra: str) -> dict[str, object]:
    result = runner.invoke(app, [
        "accounts", "create", "--reseller", "MSP", "--customer", "Acme", "--name", "files",
        "--email", "a@acme.example", "--email", "b@acme.example", "--json", *extra,
    ])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_create_prints_credentials_that_work(env: str) -> None:
    out = create()
    assert {"account_id", "token", "ping_key"} <= out.keys()
    db = Database(env)
    with db.session() as session:
        by_token = account_for_token(session, str(out["token"]))
        by_key = account_for_ping_key(session, str(out["ping_key"]))
        assert by_token is not None and by_token.id == out["account_id"]
        assert by_key is not None and by_key.contacts == ["a@acme.example", "b@acme.example"]
    db.dispose()


def test_duplicate_account_is_a_clear_error(env: str) -> None:
    create()
    result = runner.invoke(app, [
        "accounts", "create", "--reseller", "MSP", "--customer", "Acme", "--name", "files",
    ])
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_list_shows_the_path_but_no_secrets(env: str) -> None:
    out = create()
    result = runner.invoke(app, ["accounts", "list"])
    assert result.exit_code == 0
    header, row = (line.split() for line in result.stdout.splitlines())
    assert header[:4] == ["ACCOUNT_ID", "RESELLER", "CUSTOMER", "NAME"]
    assert row[:4] == [out["account_id"], "MSP", "Acme", "files"]
    assert str(out["token"]) not in result.stdout
    listed = runner.invoke(app, ["accounts", "list", "--json"])
    assert json.loads(listed.stdout)["items"][0]["account_id"] == out["account_id"]


def test_db_upgrade(env: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0
    assert "up to date" in result.stdout


def test_create_with_email_warns_when_ldap_decides(env: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTOP_LDAP_URL", "ldap://directory.example")
    result = runner.invoke(app, [
        "accounts", "create", "--reseller", "MSP", "--customer", "Acme", "--name", "files",
        "--email", "a@acme.example", "--json",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["contacts"] == ["a@acme.example"]  # kept, stdout clean
    assert "BACKSTOP_LDAP_URL" in result.stderr and "not used" in result.stderr


def test_create_without_ldap_does_not_warn(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKSTOP_LDAP_URL", raising=False)
    result = runner.invoke(app, [
        "accounts", "create", "--reseller", "MSP", "--customer", "Acme", "--name", "files",
        "--email", "a@acme.example", "--json",
    ])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def preferences(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["accounts", "preferences", *args])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


def test_preferences_in_the_database(env: str) -> None:
    account = str(create()["account_id"])
    shown = json.loads(preferences(account, "--json"))
    assert (shown["source"], shown["mails"]) == ("database", ["a@acme.example", "b@acme.example"])
    changed = json.loads(preferences(account, "--mail", "c@acme.example", "--quota-percent",
                                     "80", "--json"))
    assert changed["mails"] == ["c@acme.example"]
    assert (changed["quota_percent_in_force"], changed["quota_percent_from"]) == (80.0, "account")
    table = preferences(account)
    assert re.search(r"^quota_percent in force\s+80 \(from account\)$", table, re.M)
    assert "no warning flag" in preferences(account, "--warning", "off", code=2)
    assert "not an e-mail address" in preferences(account, "--mail", "nope", code=2)


def test_preferences_in_the_directory_are_seen_by_ldapsearch(
    env: str, slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_name = f"files-{uuid.uuid4().hex[:6]}"
    account = str(create("--name", account_name)["account_id"])
    slapd.add_account(account_name, sstBackupWarningOn="FALSE")
    for key, value in {"URL": slapd.url,
                       "ACCOUNT_BASE": f"ou=accounts,ou=backup,ou=services,{SUFFIX}"}.items():
        monkeypatch.setenv(f"BACKSTOP_LDAP_{key}", value)
    assert "read-only" in preferences(account)
    assert "BACKSTOP_LDAP_WRITE_BIND_DN" in preferences(account, "--warning", "on", code=2)
    monkeypatch.setenv("BACKSTOP_LDAP_WRITE_BIND_DN", WRITER_DN)
    monkeypatch.setenv("BACKSTOP_LDAP_WRITE_BIND_PASSWORD", WRITER_PW)
    preferences(account, "--warning", "on", "--medium", "mail", "--mail", "x@acme.example",
                "--quota-percent", "77.5")
    seen = slapd.ldapsearch(slapd.account_dn(account_name))
    assert seen["sstBackupWarningOn"] == ["TRUE"] and seen["mail"] == ["x@acme.example"]
    assert seen["sstNotificationWarningMedium"] == ["mail"]
    assert seen["backstopQuotaPercent"] == ["77.5"]
    shown = json.loads(preferences(account, "--json"))
    assert shown["recipients"] == ["x@acme.example"]
    assert (shown["quota_percent_in_force"], shown["quota_percent_from"]) == (77.5, "directory")
