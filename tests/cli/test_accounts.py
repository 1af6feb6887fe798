"""``backstop accounts`` through the real command line, on both database backends."""

import json

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.db import Database
from shared.tenancy import account_for_ping_key, account_for_token

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
