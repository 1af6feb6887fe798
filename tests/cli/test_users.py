"""``backstop users``: add, list, passwd and remove portal users, against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.portal import passwords
from services.portal.tables import PortalUser
from shared.db import Database
from tests.support import make_account


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", url)
    db = Database(url)
    db.upgrade()
    return db


def stored(db: Database, email: str) -> PortalUser | None:
    from sqlmodel import select
    with db.session() as session:
        return session.exec(select(PortalUser).where(PortalUser.email == email)).first()


def test_add_list_passwd_remove(cli_db: Database) -> None:
    issued = make_account(cli_db, reseller="My MSP", customer="Acme", name="fileserver")
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "IT@acme.example", "--role", "customer",
                                "--reseller", "My MSP", "--customer", "Acme", "--read-only",
                                "--password-stdin", "--json"],
                          input="a long enough password\n")
    assert added.exit_code == 0, added.output
    row = json.loads(added.stdout)
    assert row["email"] == "it@acme.example" and row["role"] == "customer"
    assert row["customer_id"] == issued.customer.id and row["read_only"] is True
    user = stored(cli_db, "it@acme.example")
    assert user is not None and user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert passwords.verify(user.password_hash, "a long enough password")

    prompted = runner.invoke(app, ["users", "add", "op@msp.example", "--role", "operator"],
                             input="another good password\nanother good password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "another good password" not in prompted.stdout

    ldap = runner.invoke(app, ["users", "add", "dir@msp.example", "--role", "operator", "--ldap"])
    assert ldap.exit_code == 0, ldap.output
    in_directory = stored(cli_db, "dir@msp.example")
    assert in_directory is not None and in_directory.password_hash is None
    assert runner.invoke(app, ["users", "remove", "dir@msp.example"]).exit_code == 0

    listed = runner.invoke(app, ["users", "list"])
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["EMAIL", "ROLE", "RESELLER_ID"]
    assert [line.split()[0] for line in lines[1:]] == ["it@acme.example", "op@msp.example"]
    as_json = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert as_json["total"] == 2 and "password_hash" not in as_json["items"][0]

    epoch = user.session_epoch
    changed = runner.invoke(app, ["users", "passwd", "it@acme.example", "--password-stdin"],
                            input="a brand new password\n")
    assert changed.exit_code == 0, changed.output
    after = stored(cli_db, "it@acme.example")
    assert after is not None and after.password_hash is not None
    assert passwords.verify(after.password_hash, "a brand new password")
    assert after.session_epoch == epoch + 1  # open sessions end

    assert runner.invoke(app, ["users", "remove", "it@acme.example"]).exit_code == 0
    assert stored(cli_db, "it@acme.example") is None


@pytest.mark.parametrize(("args", "says"), [
    (["x@example.com", "--role", "admin"], "--role must be one of"),
    (["x@example.com", "--role", "reseller"], "needs --reseller"),
    (["x@example.com", "--role", "reseller", "--reseller", "Nobody"], "no reseller"),
    (["x@example.com", "--role", "customer", "--reseller", "My MSP"], "needs --customer"),
    (["x@example.com", "--role", "customer", "--reseller", "My MSP", "--customer", "Other"],
     "no customer"),
    (["x@example.com", "--role", "operator", "--reseller", "My MSP"], "sees everything"),
    (["not-an-address", "--role", "operator"], "not an e-mail address"),
])
def test_invalid_requests_are_refused(cli_db: Database, args: list[str], says: str) -> None:
    make_account(cli_db, reseller="My MSP", customer="Acme", name="fileserver")
    out = CliRunner().invoke(app, ["users", "add", *args, "--password-stdin"],
                             input="a long enough password\n")
    assert out.exit_code == 2
    assert says in out.output


def test_short_passwords_and_duplicates_are_refused(cli_db: Database) -> None:
    runner = CliRunner()
    short = runner.invoke(app, ["users", "add", "op@x.example", "--role", "operator",
                                "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    args = ["users", "add", "op@x.example", "--role", "operator", "--password-stdin"]
    assert runner.invoke(app, args, input="long enough password\n").exit_code == 0
    again = runner.invoke(app, args, input="long enough password\n")
    assert again.exit_code == 2 and "exists already" in again.output
    assert runner.invoke(app, ["users", "remove", "nobody@x.example"]).exit_code == 2


def test_branding_colour_for_the_portal(cli_db: Database) -> None:
    make_account(cli_db, reseller="My MSP", customer="Acme", name="fileserver")
    runner = CliRunner()
    assert runner.invoke(app, ["branding", "set", "--reseller", "My MSP", "--colour",
                               "#0A5C36"]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["branding", "show", "--reseller", "My MSP",
                                           "--json"]).stdout)
    assert shown["colour"] == "#0a5c36"
    bad = runner.invoke(app, ["branding", "set", "--reseller", "My MSP", "--colour", "green"])
    assert bad.exit_code == 2 and "#rrggbb" in bad.output
