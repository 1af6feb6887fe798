"""Every listing prints the same way, on both database backends: a header row (even when empty),
one safe line per row, ``--limit`` (default 100, 0 = all) and ``--offset``, a footer on stderr
when rows were left out, and ``--json`` as one object {total, offset, limit, items}."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner, Result

from services.cli import app
from services.evaluator.policies import SETTINGS
from services.evaluator.store import set_override
from services.evaluator.tables import ClientMinVersion
from services.executor import admin as executor
from services.executor import history
from services.executor.plans.files import load_text
from services.notifier import admin
from services.notifier.policy import silences
from services.notifier.tables import (
    AlertNotifyState,
    DeliveryAttempt,
    Notification,
    NotifyTransition,
)
from services.portal import api_keys, users
from services.portal.history.projection import apply_ingest
from services.portal.users import Role
from shared.db import Database
from shared.events import RunReported, utcnow
from shared.tenancy import IssuedAccount, get_or_create_job, issue_token
from tests.notifier.support import KEYS
from tests.support import make_account, rename_unchecked

runner = CliRunner()
# Three targets and plans; the first plan has three executions queued.
PLANS = "---\n".join([f"kind: Target\nmetadata: {{name: web-{n}}}\n" for n in (1, 2, 3)] + [
    f"kind: Plan\nmetadata: {{name: {name}}}\nspec:\n  account: MSP/Acme/a-files\n"
    "  schedule: {cron: '0 22 * * *', timezone: Europe/Berlin}\n"
    "  destination: {path: /srv/backups}\n"
    "  activities: [{action: command.run, targets: 'web-*', options: {script: 'true'}}]\n"
    for name in ("nightly", "weekly", "monthly")])


@dataclass
class Data:
    accounts: list[str]  # ids, in listing order (by reseller, customer, name)
    webhooks: list[str]
    notification: int  # the one with three delivery attempts
    job: str  # the one with three runs


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def seed_notifications(db: Database, account: str, customer: str, reseller: str,
                       text: str = "") -> int:
    """Three of each: notifications, alert states, suppressed transitions, silences, and
    delivery attempts of the last notification (whose id is returned). ``text`` goes into every
    stored free-text field."""
    now = utcnow()
    with db.session() as session:
        notes = [Notification(key=f"{account}{n}:1:email:x", fingerprint=f"{account}{n}",
                              sequence=1, account_id=account, channel="email",
                              target=f"ops{n}@example.com", status="sent", attempts=1,
                              alert={"kind": "failed_run"}, last_error=f"HTTP 500{text}",
                              created_at=now - timedelta(hours=3 - n)) for n in range(3)]
        session.add_all(notes)
        for n in range(3):
            session.add(AlertNotifyState(fingerprint=f"{account}{n}", account_id=account,
                                         customer_id=customer, reseller_id=reseller,
                                         kind="failed_run", job=f"nightly{text}",
                                         state="firing", sequence=1, last_notified_at=now))
            session.add(NotifyTransition(key=f"{account}{n}:2", fingerprint=f"{account}{n}",
                                         sequence=2, transition="firing", account_id=account,
                                         customer_id=customer, reseller_id=reseller,
                                         alert={"kind": "missed_run"}, planned_at=now,
                                         suppressed_reason="silenced"))
            silences.add(session, reseller_id=reseller, account_id=account, starts_at=now,
                         ends_at=now + timedelta(hours=n + 1), reason=f"migration{text}")
        session.flush()
        last = notes[-1].id
        assert last is not None
        for n in range(3):
            session.add(DeliveryAttempt(notification_id=last, at=now + timedelta(seconds=n),
                                        status="retry", channel="email", target="ops@example.com",
                                        error=f"421 try later{text}"))
    return last


def seed_runs(db: Database, issued: IssuedAccount, text: str = "") -> str:
    """Three jobs, the first with three runs (``text`` in their messages and logs); returns the
    first job's id."""
    tenant = issued.account.tenant()
    with db.session() as session:
        apply_ingest(session, [
            RunReported(tenant=tenant, job=f"nightly{n}", status="failure",
                        occurred_at=utcnow() - timedelta(hours=n, minutes=j),
                        message=f"disk full{text}", log_excerpt=f"log{text}")
            for n in range(3) for j in range(3 if n == 0 else 1)], 16384)
        return get_or_create_job(session, issued.account.id, "nightly0").id


@pytest.fixture
def data(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Data:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    issued = [make_account(db, reseller="MSP", customer="Acme", name=name,
                           contacts=[f"{name}@acme.example"])
              for name in ("a-files", "b-mail", "c-web", "d-db")]
    accounts = [i.account.id for i in issued]
    with db.session() as session:
        for _ in range(3):
            issue_token(session, accounts[0])
        for name, value in (("quota_percent", "80"), ("failures_tolerance", "2"),
                            ("grace_seconds", "600")):
            set_override(session, "account", accounts[0], name, value)
        session.add(ClientMinVersion(client_name="restic", min_version="0.17.0"))
        webhooks = [admin.add_webhook(session, reseller="MSP", customer=None,
                                      url=f"https://psa.example/{n}", fmt="backstop",
                                      secret=None, keys=KEYS).endpoint.id for n in range(3)]
        admin.set_brand(session, "MSP", name="Acme IT", sender=None, logo_url=None, footer=None)
        executor.apply(session, load_text(PLANS))
        session.flush()
        for n in range(3):
            history.queue(session, f"execution{n}", "nightly", utcnow() - timedelta(hours=n))
        for n in range(3):
            users.add(session, f"op{n}@example.com", Role.operator, None)
            api_keys.create(session, f"op{n}@example.com", f"grafana{n}")
    notification = seed_notifications(db, accounts[0], issued[0].customer.id,
                                      issued[0].reseller.id)
    return Data(accounts, webhooks, notification, seed_runs(db, issued[0]))


def table(text: str) -> list[list[str]]:
    """The table a command prints first (`effective` goes on after a blank line)."""
    return [line.split() for line in text.split("\n\n")[0].splitlines()]


# Every listing, with its header; {account} and {notification} are filled in from the data.
LISTINGS: dict[tuple[str, ...], list[str]] = {
    ("accounts", "list"): ["ACCOUNT_ID", "RESELLER", "CUSTOMER", "NAME", "CONTACTS",
                           "QUOTA_BYTES"],
    ("tokens", "list", "--account", "{account}"): ["ID", "CREATED_AT", "REVOKED_AT"],
    ("thresholds", "list"): ["SCOPE", "SCOPE_ID", "NAME", "VALUE"],
    ("thresholds", "defaults"): ["NAME", "DEFAULT", "DESCRIPTION"],
    ("webhooks", "list"): ["ID", "FORMAT", "RESELLER_ID", "CUSTOMER_ID", "URL", "ENABLED"],
    ("notifications", "list"): ["ID", "STATUS", "CHANNEL", "TARGET", "KIND", "TRANSITION",
                                "ATTEMPTS", "CREATED_AT", "LAST_ERROR"],
    ("notifications", "status"): ["FINGERPRINT", "KIND", "STATE", "JOB", "LAST_NOTIFIED_AT",
                                  "NOTIFICATION_COUNT", "DEAD"],
    ("notifications", "suppressed"): ["AT", "REASON", "KIND", "TRANSITION", "ACCOUNT_ID", "KEY"],
    ("notifications", "attempts", "{notification}"): ["AT", "STATUS", "CHANNEL", "TARGET",
                                                      "HTTP_STATUS", "ERROR"],
    ("notifications", "silence", "list"): ["ID", "RESELLER_ID", "CUSTOMER_ID", "ACCOUNT_ID",
                                           "ENDS_AT", "REASON"],
    ("jobs", "list"): ["JOB_ID", "STATE", "CUSTOMER", "ACCOUNT", "JOB", "LAST_RUN_AT",
                       "LAST_STATUS", "NEXT_DUE_AT", "LAST_30_DAYS"],
    ("runs", "list", "--job", "{job}"): ["RUN", "STATUS", "STARTED", "DURATION_S", "BYTES",
                                         "FILES", "EXIT_CODE", "MESSAGE"],
    ("plugins", "list"): ["PLUGIN", "ACTIONS", "DISTRIBUTION", "VERSION", "ERROR"],
    ("plans", "list"): ["NAME", "ENABLED", "ACCOUNT", "JOB", "SCHEDULE", "WINDOWS", "ACTIVITIES",
                        "LAST_RUN", "LAST_STATUS"],
    ("plans", "history", "{plan}"): ["ID", "QUEUED_AT", "TARGETS", "ITEMS", "STATUS",
                                     "SUCCEEDED", "FAILED", "SKIPPED", "ERROR"],
    ("targets", "list"): ["NAME", "ADDRESS", "LABELS", "SSH", "GENERATION", "APPLIED_AT"],
    ("users", "list"): ["EMAIL", "ROLE", "RESELLER_ID", "CUSTOMER_ID", "READ_ONLY", "LOGIN",
                        "CREATED_AT", "LAST_LOGIN_AT"],
    ("users", "api-key", "list"): ["ID", "USER", "NAME", "HINT", "CREATED_AT", "LAST_USED_AT",
                                   "REVOKED_AT"],
}
# Commands that print one record: --json is one object of its own shape, no paging.
ONE_RECORD = {("accounts", "create"), ("accounts", "preferences"), ("tokens", "issue"),
              ("webhooks", "add"), ("branding", "show"), ("thresholds", "effective"),
              ("notifications", "count"), ("jobs", "show"), ("plugins", "show"),
              ("plans", "show"), ("plans", "apply"), ("users", "add"),
              ("executor", "status"), ("plans", "run"),
              ("users", "api-key", "create")}


def filled(args: tuple[str, ...], data: Data) -> list[str]:
    return [a.format(account=data.accounts[0], notification=data.notification, job=data.job,
                     plan="nightly")
            for a in args]


def _commands(command: object, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Every command's path and its option names."""
    if isinstance(command, TyperGroup):
        return {p: o for name, sub in command.commands.items()
                for p, o in _commands(sub, (*path, name)).items()}
    assert isinstance(command, TyperCommand)
    return {path: {opt for p in command.params for opt in p.opts}}


def test_every_command_with_json_is_a_paged_listing_or_prints_one_record() -> None:
    commands = _commands(typer.main.get_command(app))
    listings = {tuple(a for a in args if not a.startswith(("-", "{"))) for args in LISTINGS}
    with_json = {path for path, options in commands.items() if "--json" in options}
    assert with_json == listings | ONE_RECORD
    for path in listings:
        assert {"--json", "--limit", "--offset"} <= commands[path], path
    for path in ONE_RECORD:
        assert "--limit" not in commands[path], path


@pytest.mark.parametrize("args", [*LISTINGS, ("thresholds", "effective", "--account", "{account}"),
                                  ("branding", "show", "--reseller", "MSP")], ids=" ".join)
def test_every_listing_starts_with_its_header(data: Data, args: tuple[str, ...]) -> None:
    header = LISTINGS.get(args) or {"effective": ["SETTING", "VALUE", "FROM"],
                                    "show": ["FIELD", "VALUE"]}[args[1]]
    out = invoke(*filled(args, data)).stdout
    rows = table(out)
    assert rows[0] == header
    assert len(rows) > 1 and all(len(r) >= len(header) for r in rows)
    # Columns line up under their headers: each header starts where its column starts.
    first, second = out.splitlines()[:2]
    for name in header[1:]:
        at = first.index(f" {name}") + 1
        assert second[at - 2:at] == "  " and second[at] != " ", (first, second)


def test_accounts_list_has_one_row_per_account(data: Data) -> None:
    rows = table(invoke("accounts", "list").stdout)
    assert rows[1] == [data.accounts[0], "MSP", "Acme", "a-files", "a-files@acme.example", "-"]
    assert [r[0] for r in rows[1:]] == data.accounts


def test_thresholds_list_shows_overrides_and_minimum_versions(data: Data) -> None:
    rows = table(invoke("thresholds", "list").stdout)
    assert ["account", data.accounts[0], "quota_percent", "80"] in rows
    assert ["client", "restic", "min_version", "0.17.0"] in rows
    items = json.loads(invoke("thresholds", "list", "--json").stdout)["items"]
    assert {"scope": "client", "scope_id": "restic", "name": "min_version",
            "value": "0.17.0"} in items  # the rows a person sees


def test_a_long_listing_says_which_rows_it_showed(data: Data) -> None:
    result = invoke("accounts", "list", "--limit", "2")
    assert [r[0] for r in table(result.stdout)[1:]] == data.accounts[:2]
    assert result.stderr == "showing 1-2 of 4 (next: --offset 2)\n"
    rest = invoke("accounts", "list", "--limit", "2", "--offset", "2")
    assert [r[0] for r in table(rest.stdout)[1:]] == data.accounts[2:]
    assert rest.stderr == "showing 3-4 of 4\n"  # the first two were left out
    for everything in (invoke("accounts", "list"), invoke("accounts", "list", "--limit", "0")):
        assert [r[0] for r in table(everything.stdout)[1:]] == data.accounts
        assert everything.stderr == ""


def test_json_is_one_object_with_the_same_rows_and_the_footer_goes_to_stderr(
        data: Data) -> None:
    result = invoke("accounts", "list", "--json", "--limit", "3")
    page = json.loads(result.stdout)
    assert (page["total"], page["offset"], page["limit"]) == (4, 0, 3)
    assert [row["account_id"] for row in page["items"]] == data.accounts[:3]
    assert page["items"][0] == {"account_id": data.accounts[0], "reseller": "MSP",
                                "customer": "Acme", "name": "a-files",
                                "contacts": ["a-files@acme.example"], "quota_bytes": None}
    assert result.stderr == "showing 1-3 of 4 (next: --offset 3)\n"


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_every_listing_pages_the_same_way(data: Data, args: tuple[str, ...]) -> None:
    argv = filled(args, data)
    full = invoke(*argv, "--json")
    page = json.loads(full.stdout)
    assert set(page) == {"total", "offset", "limit", "items"} and full.stderr == ""
    total = page["total"]
    assert (page["offset"], page["limit"]) == (0, 100) and len(page["items"]) == total >= 3
    whole = invoke(*argv)
    lines = whole.stdout.splitlines()
    assert len(lines) == 1 + total and whole.stderr == ""  # header, one line per row
    assert len(invoke(*argv, "--limit", "0").stdout.splitlines()) == 1 + total

    second = invoke(*argv, "--limit", "1", "--offset", "1")
    footer = f"showing 2-2 of {total} (next: --offset 2)\n"
    assert second.stderr == footer
    assert [line.split() for line in second.stdout.splitlines()] == [
        lines[0].split(), lines[2].split()]
    paged = invoke(*argv, "--json", "--limit", "1", "--offset", "1")
    assert json.loads(paged.stdout) == {"total": total, "offset": 1, "limit": 1,
                                        "items": page["items"][1:2]}
    assert paged.stderr == footer

    past = invoke(*argv, "--offset", "500")
    assert [line.split() for line in past.stdout.splitlines()] == [lines[0].split()]  # header
    assert past.stderr == f"showing 0 of {total}\n"


# ESC ] 0 ; … BEL sets the terminal's title, ESC [ 2 J clears it, CSI (U+009B) is ESC [ on some
# terminals, CR rewinds the line, U+2028 breaks it. (No NUL: PostgreSQL text cannot hold it;
# test_tables checks it.)
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\n\x9b31m\u2028\x7f"
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # all but the line feed


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_no_listing_lets_stored_text_drive_the_terminal(
        db: Database, data: Data, args: tuple[str, ...]) -> None:
    issued = make_account(db, reseller="MSP-x", customer="Acme-x", name="evil",
                          contacts=["ops@example.com"])
    rename_unchecked(db, issued, reseller=f"MSP{HOSTILE}", customer=f"Acme{HOSTILE}",
                     account=f"evil{HOSTILE}")
    notification = seed_notifications(db, issued.account.id, issued.customer.id,
                                      issued.reseller.id, HOSTILE)
    job = seed_runs(db, issued, HOSTILE)
    argv = [a.format(account=issued.account.id, notification=notification, job=job,
                     plan="nightly") for a in args]
    out = invoke(*argv, "--limit", "0").stdout
    assert not UNSAFE.search(out), out
    total = json.loads(invoke(*argv, "--json", "--limit", "0").stdout)["total"]
    assert len(out.splitlines()) == 1 + total  # every row still one line


def test_long_free_text_is_capped_and_urls_are_not(db: Database, data: Data) -> None:
    with db.session() as session:
        url = "https://psa.example/hook/" + "a" * 150
        admin.add_webhook(session, reseller="MSP", customer=None, url=url, fmt="backstop",
                          secret=None, keys=KEYS)
        session.add(DeliveryAttempt(notification_id=data.notification, status="dead",
                                    error="550 " + "rejected " * 100))
    assert url in invoke("webhooks", "list").stdout
    out = invoke("notifications", "attempts", str(data.notification)).stdout
    error = out.splitlines()[-1].split("  ")[-1]
    assert error.startswith("550 rejected") and error.endswith("…") and len(error) == 120
    item = json.loads(invoke("notifications", "attempts", str(data.notification), "--json"
                             ).stdout)["items"][-1]
    assert item["error"] == "550 " + "rejected " * 100  # JSON: as stored


def test_thresholds_defaults_are_not_cut(data: Data) -> None:
    out = invoke("thresholds", "defaults").stdout
    for setting in SETTINGS.values():
        assert " ".join(setting.description.split()) in out
