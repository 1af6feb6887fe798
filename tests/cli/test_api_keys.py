"""``backstop users api-key``: create (shown once), list (never the key), revoke — against a
real (SQLite) database; a created key reads the portal's API as its user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.portal import api_keys, users
from services.portal.users import Role
from shared.db import Database


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", url)
    db = Database(url)
    db.upgrade()
    return db


def test_create_list_and_revoke(cli_db: Database) -> None:
    with cli_db.session() as session:
        users.add(session, "op@example.com", Role.operator, "correct horse battery")
    runner = CliRunner()
    out = runner.invoke(app, ["users", "api-key", "create", "OP@example.com", "--name",
                              "grafana", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    assert created["key"].startswith("bsk_") and created["user"] == "op@example.com"
    with cli_db.session() as session:
        user = api_keys.user_of(session, created["key"])
        assert user is not None and user.email == "op@example.com"

    listed = runner.invoke(app, ["users", "api-key", "list"])
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "USER", "NAME", "HINT", "CREATED_AT", "LAST_USED_AT", "REVOKED_AT"]
    assert "grafana" in listed.stdout and created["key"] not in listed.stdout

    assert runner.invoke(app, ["users", "api-key", "revoke", created["id"]]).exit_code == 0
    with cli_db.session() as session:
        assert api_keys.user_of(session, created["key"]) is None
    again = runner.invoke(app, ["users", "api-key", "revoke", created["id"]])
    assert again.exit_code == 2 and "no active key" in again.stderr
    listed = runner.invoke(app, ["users", "api-key", "list", "--json"])
    assert json.loads(listed.stdout)["total"] == 0


def test_a_key_for_an_unknown_user_is_refused(cli_db: Database) -> None:
    out = CliRunner().invoke(app, ["users", "api-key", "create", "nobody@example.com",
                                   "--name", "x"])
    assert out.exit_code == 2 and "no user" in out.stderr
