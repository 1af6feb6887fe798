"""``backstop notifications``: contacts, repeat, silences, the log, dead letters and replay."""

import json
from datetime import timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner, Result

from services.cli import app
from services.notifier.tables import AlertNotifyState, Notification, NotifySettings
from shared.db import Database
from shared.events import utcnow

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    result = runner.invoke(app, ["accounts", "create", "--reseller", "MSP", "--customer", "Acme",
                                 "--name", "files", "--json"])
    assert result.exit_code == 0, result.output
    return {"url": db_url, **json.loads(result.stdout)}


def run(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def invoke(*args: str) -> str:
    return run(*args).stdout


def items(text: str) -> list[dict[str, object]]:
    page = json.loads(text)
    assert page["total"] == len(page["items"])
    return list(page["items"])


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
    [row] = items(invoke("notifications", "silence", "list", "--json"))
    assert row["id"] == silence_id and row["reason"] == "migration"
    invoke("notifications", "silence", "remove", silence_id)
    assert items(invoke("notifications", "silence", "list", "--json")) == []
    assert len(items(invoke("notifications", "silence", "list", "--expired", "--json"))) == 1


def test_dead_letters_listed_and_replayed(env: dict[str, str]) -> None:
    db = Database(env["url"])
    now = utcnow()
    with db.session() as s:
        s.add(Notification(key="fp:1:webhook:x", fingerprint="fp", sequence=1,
                           account_id=env["account_id"], channel="webhook", target="x",
                           status="dead", attempts=20, last_error="HTTP 500",
                           created_at=now - timedelta(hours=25), dead_at=now))
    [dead] = items(invoke("notifications", "list", "--dead", "--json"))
    assert dead["status"] == "dead" and dead["last_error"] == "HTTP 500"
    assert invoke("notifications", "replay").strip() == "replayed 1"
    [row] = items(invoke("notifications", "list", "--json"))
    assert row["status"] == "pending"
    assert items(invoke("notifications", "list", "--dead", "--json")) == []
    assert items(invoke("notifications", "attempts", str(row["id"]), "--json")) == []
    db.dispose()


@pytest.mark.parametrize("target", [["--reseller", "MSP"], ["--account", "ACCOUNT"]])
def test_contacts_refuse_what_cannot_be_mailed(env: dict[str, str], target: list[str]) -> None:
    args = [env["account_id"] if a == "ACCOUNT" else a for a in target]
    for bad in ("noc@msp.example\nBcc: all@example.com", "noc", "NOC <noc@msp.example>"):
        result = runner.invoke(app, ["notifications", "contacts", *args, "--email", bad])
        assert result.exit_code == 2 and "not an e-mail address" in result.output, result.output


# --- the log: paging, totals, filters, counts ------------------------------------------------

KINDS = ["failed_run", "quota", "missed_run"]


def _seed(env: dict[str, str], count: int = 120) -> None:
    """``count`` notifications an hour apart, the newest half an hour old (id 1 the oldest):
    every 10th dead, every 4th a webhook, kinds in turn; and an alert state per kind."""
    db = Database(env["url"])
    now = utcnow()
    with db.session() as s:
        for i in range(count):
            s.add(Notification(
                key=f"fp{i}:1:email:x", fingerprint=f"fp{i:04d}", sequence=1,
                account_id=env["account_id"], channel="webhook" if i % 4 == 0 else "email",
                target=f"t{i}", status="dead" if i % 10 == 0 else "sent", attempts=1,
                alert={"kind": KINDS[i % 3]}, last_error="line one\nline\x1b[31m two",
                created_at=now - timedelta(hours=count - i - 0.5)))
        for i, kind in enumerate(KINDS):
            s.add(AlertNotifyState(fingerprint=f"fp{i:04d}", account_id=env["account_id"],
                                   customer_id=env["customer_id"], reseller_id=env["reseller_id"],
                                   kind=kind, state="firing" if i else "resolved", sequence=1))
    db.dispose()


def test_list_pages_with_a_header_and_a_footer_saying_how_many(env: dict[str, str]) -> None:
    _seed(env)
    result = run("notifications", "list", "--limit", "50")
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "CHANNEL", "TARGET"]
    assert len(rows) == 50 and rows[0].split()[0] == "120" and rows[-1].split()[0] == "71"
    assert result.stderr == "showing 1-50 of 120 (next: --offset 50)\n"  # stdout: rows only
    assert "\x1b" not in rows[0] and "line one line [31m two" in rows[0]  # one line, no ESC

    default = run("notifications", "list")  # 100 rows by default
    assert len(default.stdout.splitlines()) == 101
    assert default.stderr == "showing 1-100 of 120 (next: --offset 100)\n"
    rest = run("notifications", "list", "--offset", "100", "--limit", "50")
    assert len(rest.stdout.splitlines()[1:]) == 20 and rest.stderr == "showing 101-120 of 120\n"
    everything = run("notifications", "list", "--limit", "0")
    assert len(everything.stdout.splitlines()) == 121 and everything.stderr == ""
    past = run("notifications", "list", "--offset", "500")
    assert [line.split() for line in past.stdout.splitlines()] == [header.split()]
    assert past.stderr == "showing 0 of 120\n"


def test_list_json_has_the_total_and_the_items(env: dict[str, str]) -> None:
    _seed(env)
    result = run("notifications", "list", "--json", "--limit", "10", "--offset", "110")
    page = json.loads(result.stdout)
    assert page["total"] == 120 and (page["offset"], page["limit"]) == (110, 10)
    assert result.stderr == "showing 111-120 of 120\n"
    assert [i["id"] for i in page["items"]] == list(range(10, 0, -1))
    assert page["items"][0]["last_error"] == "line one\nline\x1b[31m two"  # JSON: as stored
    assert page["items"][0]["kind"] == KINDS[9 % 3]


@pytest.mark.parametrize(("args", "total"), [
    (["--status", "dead"], 12),
    (["--state", "dead"], 12),
    (["--dead"], 12),
    (["--kind", "quota"], 40),
    (["--channel", "webhook"], 30),
    (["--kind", "failed_run", "--channel", "webhook"], 10),
    (["--since", "24h"], 24),
    (["--since", "90m"], 1),
    (["--dead", "--since", "2d"], 4),
])
def test_list_filters(env: dict[str, str], args: list[str], total: int) -> None:
    _seed(env)
    page = json.loads(invoke("notifications", "list", "--json", *args))
    assert page["total"] == total, page["total"]
    assert len(page["items"]) == min(total, 100)


def test_list_since_an_iso_time(env: dict[str, str]) -> None:
    _seed(env)
    since = (utcnow() - timedelta(hours=10, minutes=30)).isoformat()
    assert json.loads(invoke("notifications", "list", "--json", "--since", since))["total"] == 10
    naive = (utcnow() - timedelta(hours=10, minutes=30)).replace(tzinfo=None).isoformat()
    assert json.loads(invoke("notifications", "list", "--json", "--since", naive))["total"] == 10


@pytest.mark.parametrize("args", [["--since", "yesterday-ish"], ["--status", "lost"],
                                  ["--limit", "-1"], ["--offset", "-1"]])
def test_list_refuses_bad_options(env: dict[str, str], args: list[str]) -> None:
    assert runner.invoke(app, ["notifications", "list", *args]).exit_code == 2


def test_count_alerts_and_notifications(env: dict[str, str]) -> None:
    _seed(env)
    counts = json.loads(invoke("notifications", "count", "--json"))
    assert counts["alerts"]["total"] == 3
    assert {(g["state"], g["kind"], g["count"]) for g in counts["alerts"]["groups"]} == {
        ("resolved", "failed_run", 1), ("firing", "quota", 1), ("firing", "missed_run", 1)}
    notifications = counts["notifications"]
    assert notifications["total"] == 120
    assert sum(g["count"] for g in notifications["groups"] if g["status"] == "dead") == 12
    assert {g["channel"] for g in notifications["groups"]} == {"email", "webhook"}
    assert sum(g["count"] for g in notifications["groups"] if g["kind"] == "quota") == 40

    since = json.loads(invoke("notifications", "count", "--json", "--since", "24h",
                              "--kind", "quota"))
    assert since["notifications"]["total"] == 8 and since["alerts"]["total"] == 1

    text = invoke("notifications", "count").splitlines()
    assert text[0] == "alerts: 3" and text[1].split() == ["STATE", "KIND", "COUNT"]
    assert text[2:5] == ["firing    missed_run  1", "firing    quota       1",
                         "resolved  failed_run  1"]
    at = text.index("notifications: 120")
    assert text[at + 1].split() == ["STATUS", "CHANNEL", "KIND", "COUNT"]
    assert sum(int(line.split()[-1]) for line in text[at + 2:]) == 120


def test_status_pages_and_counts_dead_letters(env: dict[str, str]) -> None:
    _seed(env)
    page = json.loads(invoke("notifications", "status", "--json"))
    assert page["total"] == 3
    dead = {i["fingerprint"]: i["dead"] for i in page["items"]}
    assert dead == {"fp0000": 1, "fp0001": 0, "fp0002": 0}
    firing = json.loads(invoke("notifications", "status", "--json", "--state", "firing",
                               "--kind", "quota"))
    assert [i["kind"] for i in firing["items"]] == ["quota"]
    result = run("notifications", "status", "--limit", "2")
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["FINGERPRINT", "KIND", "STATE"] and len(rows) == 2
    assert result.stderr == "showing 1-2 of 3 (next: --offset 2)\n"
