"""``backstop notifications``: contacts, repeat, silences, the log, dead letters and replay."""

import json
from datetime import timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from services.cli import app
from services.notifier.tables import Notification, NotifySettings
from shared.db import Database, utcnow

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    result = runner.invoke(app, ["accounts", "create", "--reseller", "MSP", "--customer", "Acme",
                                 "--name", "files", "--json"])
    assert result.exit_code == 0, result.output
    return {"url": db_url, **json.loads(result.stdout)}


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_contacts_and_repeat(env: dict[str, str]) -> None:
    invoke("notifications", "contacts", "--reseller", "MSP", "--email", "noc@msp.example")
    invoke("notifications", "contacts", "--account", env["account_id"],
           "--email", "x@acme.example")
    invoke("notifications", "repeat", "--reseller", "MSP", "--customer", "Acme", "--every", "30m")
    db = Database(env["url"])
    with db.session() as s:
        rows = {r.customer_id: r for r in s.exec(select(NotifySettings)).all()}
    assert rows[""].contacts == ["noc@msp.example"]
    assert rows[env["customer_id"]].repeat_interval_seconds == 1800
    db.dispose()
    assert runner.invoke(app, ["notifications", "repeat", "--reseller", "MSP", "--every",
                               "often"]).exit_code != 0


def test_silences(env: dict[str, str]) -> None:
    out = invoke("notifications", "silence", "add", "--reseller", "MSP", "--customer", "Acme",
                 "--for", "2h", "--reason", "migration")
    silence_id = out.split()[1]
    [row] = lines(invoke("notifications", "silence", "list", "--json"))
    assert row["id"] == silence_id and row["reason"] == "migration"
    invoke("notifications", "silence", "remove", silence_id)
    assert invoke("notifications", "silence", "list", "--json") == ""


def test_dead_letters_listed_and_replayed(env: dict[str, str]) -> None:
    db = Database(env["url"])
    now = utcnow()
    with db.session() as s:
        s.add(Notification(key="fp:1:webhook:x", fingerprint="fp", sequence=1,
                           account_id=env["account_id"], channel="webhook", target="x",
                           status="dead", attempts=20, last_error="HTTP 500",
                           created_at=now - timedelta(hours=25), dead_at=now))
    [dead] = lines(invoke("notifications", "list", "--dead", "--json"))
    assert dead["status"] == "dead" and dead["last_error"] == "HTTP 500"
    assert invoke("notifications", "replay").strip() == "replayed 1"
    [row] = lines(invoke("notifications", "list", "--json"))
    assert row["status"] == "pending"
    assert invoke("notifications", "list", "--dead", "--json") == ""
    assert invoke("notifications", "attempts", str(row["id"]), "--json") == ""
    db.dispose()


@pytest.mark.parametrize("target", [["--reseller", "MSP"], ["--account", "ACCOUNT"]])
def test_contacts_refuse_what_cannot_be_mailed(env: dict[str, str], target: list[str]) -> None:
    args = [env["account_id"] if a == "ACCOUNT" else a for a in target]
    for bad in ("noc@msp.example\nBcc: all@example.com", "noc", "NOC <noc@msp.example>"):
        result = runner.invoke(app, ["notifications", "contacts", *args, "--email", bad])
        assert result.exit_code == 2 and "not an e-mail address" in result.output, result.output
