"""Every listing prints a header row for people, keeps ``--json`` for scripts, and says on stderr
how many rows ``--limit``/``--offset`` left out; on both database backends."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.evaluator.store import set_override
from services.evaluator.tables import ClientMinVersion
from services.notifier import admin
from shared.db import Database
from shared.tenancy import issue_token
from tests.conftest import make_account
from tests.notifier.support import KEYS

runner = CliRunner()


@dataclass
class Data:
    accounts: list[str]  # ids, in listing order (by reseller, customer, name)
    webhooks: list[str]


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def data(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Data:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    accounts = [make_account(db, reseller="MSP", customer="Acme", name=name,
                             contacts=[f"{name}@acme.example"]).account.id
                for name in ("a-files", "b-mail", "c-web", "d-db")]
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
    return Data(accounts, webhooks)


def table(text: str) -> list[list[str]]:
    """The table a command prints first (`effective` goes on after a blank line)."""
    return [line.split() for line in text.split("\n\n")[0].splitlines()]


def test_accounts_list_has_a_header_and_one_row_per_account(data: Data) -> None:
    rows = table(invoke("accounts", "list").stdout)
    assert rows[0] == ["ACCOUNT_ID", "RESELLER", "CUSTOMER", "NAME", "CONTACTS", "QUOTA_BYTES"]
    assert rows[1] == [data.accounts[0], "MSP", "Acme", "a-files", "a-files@acme.example", "-"]
    assert [r[0] for r in rows[1:]] == data.accounts


@pytest.mark.parametrize(("args", "header"), [
    (["tokens", "list", "--account", "{account}"], ["ID", "CREATED_AT", "REVOKED_AT"]),
    (["thresholds", "list"], ["SCOPE", "SCOPE_ID", "NAME", "VALUE"]),
    (["thresholds", "defaults"], ["NAME", "DEFAULT", "DESCRIPTION"]),
    (["thresholds", "effective", "--account", "{account}"], ["SETTING", "VALUE", "FROM"]),
    (["webhooks", "list"], ["ID", "FORMAT", "RESELLER_ID", "CUSTOMER_ID", "URL", "ENABLED"]),
    (["branding", "show", "--reseller", "MSP"], ["FIELD", "VALUE"]),
], ids=["tokens list", "thresholds list", "thresholds defaults", "thresholds effective",
        "webhooks list", "branding show"])
def test_every_listing_starts_with_its_header(data: Data, args: list[str],
                                              header: list[str]) -> None:
    out = invoke(*(a.format(account=data.accounts[0]) for a in args)).stdout
    rows = table(out)
    assert rows[0] == header
    assert len(rows) > 1 and all(len(r) >= len(header) for r in rows)
    # Columns line up under their headers: each header starts where its column starts.
    first, second = out.splitlines()[:2]
    for name in header[1:]:
        at = first.index(f" {name}") + 1
        assert second[at - 2:at] == "  " and second[at] != " ", (first, second)


def test_thresholds_list_shows_overrides_and_minimum_versions(data: Data) -> None:
    rows = table(invoke("thresholds", "list").stdout)
    assert ["account", data.accounts[0], "quota_percent", "80"] in rows
    assert ["client", "restic", "min_version", "0.17.0"] in rows


def test_a_long_listing_says_how_many_rows_it_left_out(data: Data) -> None:
    result = invoke("accounts", "list", "--limit", "2")
    assert [r[0] for r in table(result.stdout)[1:]] == data.accounts[:2]
    assert result.stderr.strip() == "2 more rows not shown (use --limit/--offset)"
    rest = invoke("accounts", "list", "--limit", "2", "--offset", "2")
    assert [r[0] for r in table(rest.stdout)[1:]] == data.accounts[2:]
    assert rest.stderr == ""
    everything = invoke("accounts", "list", "--limit", "0")
    assert [r[0] for r in table(everything.stdout)[1:]] == data.accounts
    assert everything.stderr == ""


def test_json_gets_the_same_rows_and_the_note_goes_to_stderr(data: Data) -> None:
    result = invoke("accounts", "list", "--json", "--limit", "3")
    assert [json.loads(line)["account_id"] for line in result.stdout.splitlines()] == (
        data.accounts[:3])
    assert result.stderr.strip() == "1 more row not shown (use --limit/--offset)"


@pytest.mark.parametrize("args", [
    ["tokens", "list", "--account", "{account}"],  # 4 tokens: the first and 3 issued
    ["thresholds", "list"],  # 3 thresholds and 1 minimum version
    ["webhooks", "list"],  # 3 endpoints
], ids=" ".join)
def test_every_long_listing_pages(data: Data, args: list[str]) -> None:
    args = [a.format(account=data.accounts[0]) for a in args]
    full = invoke(*args, "--json").stdout.splitlines()
    assert len(full) >= 3
    result = invoke(*args, "--limit", "1", "--offset", "1")
    assert len(table(result.stdout)) == 2  # header and one row
    assert result.stderr.strip().startswith(f"{len(full) - 2} more row")
    paged = invoke(*args, "--json", "--limit", "1", "--offset", "1").stdout.splitlines()
    assert paged == full[1:2]
