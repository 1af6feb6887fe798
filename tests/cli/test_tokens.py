"""``backstop tokens``: issue, list and revoke, against a real (SQLite) database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.db import Database
from shared.tenancy import account_for_token
from tests.support import make_account


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", url)
    db = Database(url)
    db.upgrade()
    return db


def test_issue_list_and_revoke(cli_db: Database) -> None:
    issued = make_account(cli_db, name="acme")
    runner = CliRunner()
    out = runner.invoke(app, ["tokens", "issue", "--account", issued.account.id, "--json"])
    assert out.exit_code == 0, out.output
    new_token = json.loads(out.stdout)["token"]
    with cli_db.session() as session:
        assert account_for_token(session, new_token) is not None

    listed = runner.invoke(app, ["tokens", "list", "--account", issued.account.id, "--json"])
    rows = json.loads(listed.stdout)["items"]
    assert len(rows) == 2 and all(r["revoked_at"] is None for r in rows)
    assert new_token not in listed.stdout

    by_secret = runner.invoke(app, ["tokens", "revoke", new_token])
    by_id = runner.invoke(app, ["tokens", "revoke", rows[0]["id"]])
    again = runner.invoke(app, ["tokens", "revoke", new_token])
    assert (by_secret.exit_code, by_id.exit_code, again.exit_code) == (0, 0, 1)
    with cli_db.session() as session:
        assert account_for_token(session, new_token) is None
        assert account_for_token(session, issued.token) is None


def test_issue_for_unknown_account_fails(cli_db: Database) -> None:
    out = CliRunner().invoke(app, ["tokens", "issue", "--account", "nope"])
    assert out.exit_code == 2 and "no account" in out.output
