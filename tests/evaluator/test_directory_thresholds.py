"""Quota thresholds from the accounts' LDAP entries (a real slapd), synced into the evaluator's
policies on its refresh interval: never searched per event, kept while the directory is down."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from services.cli import app
from services.evaluator.directory_thresholds import DirectoryThresholds
from services.evaluator.service import Evaluator
from services.evaluator.store import load_policies, set_override
from services.evaluator.tables import Alert
from shared.bus import Bus
from shared.config import EvaluatorSettings
from shared.db import Database
from shared.events import UsageReported
from shared.tenancy import all_paths
from tests.evaluator.support import StartEvaluator
from tests.slapd import SUFFIX, Slapd
from tests.support import eventually, make_account, tenant_of

ACCOUNTS = f"ou=accounts,ou=backup,ou=services,{SUFFIX}"


def ldap(server: Slapd, **overrides: object) -> dict[str, object]:
    return {"ldap_url": server.url, "ldap_account_base": ACCOUNTS, "ldap_timeout": 1.0,
            **overrides}


def synced(db: Database, server: Slapd) -> DirectoryThresholds:
    directory = DirectoryThresholds(EvaluatorSettings(**ldap(server)))  # type: ignore[arg-type]
    with db.session() as session:
        assert directory.sync(all_paths(session))
    return directory


def quota_alerts(db: Database) -> list[Alert]:
    with db.session() as session:
        return [a for a in session.exec(select(Alert)) if a.kind == "quota"]


async def test_threshold_from_the_directory_is_in_force_without_a_search_per_event(
    sqlite_db: Database, bus: Bus, slapd: Slapd, start_evaluator: StartEvaluator
):
    issued = make_account(sqlite_db, quota_bytes=1000)
    slapd.add_account(issued.account.name, backstopQuotaPercent="50")
    before = slapd.searches(ACCOUNTS)
    # A long refresh: the start-up sync is the only one during the test.
    evaluator = await start_evaluator(sqlite_db, replica_id="one",
                                      **ldap(slapd, evaluator_refresh_seconds=3600))
    await eventually(evaluator.ready, timeout=20)
    tenant = tenant_of(issued)
    now = datetime.now(UTC)
    for used in range(400, 600, 10):  # 20 events; 50 % of 1000 is crossed at 500
        await bus.publish(UsageReported(tenant=tenant, occurred_at=now, bytes_used=used))
    fired = await eventually(lambda: [a for a in quota_alerts(sqlite_db)
                                      if a.state == "firing"])
    assert fired[0].details["threshold_percent"] == 50.0  # the default would be 90
    assert slapd.searches(ACCOUNTS) - before == 1


def test_effective_shows_the_directory_as_the_source(
    sqlite_db: Database, sqlite_url: str, slapd: Slapd, monkeypatch: pytest.MonkeyPatch
):
    issued = make_account(sqlite_db)
    slapd.add_account(issued.account.name, backstopQuotaPercent="65")
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BACKSTOP_LDAP_URL", slapd.url)
    monkeypatch.setenv("BACKSTOP_LDAP_ACCOUNT_BASE", ACCOUNTS)
    result = CliRunner().invoke(app, ["thresholds", "effective", "--account", issued.account.id])
    assert result.exit_code == 0, result.output
    assert re.search(r"^quota_percent\s+65\.0\s+directory\s*$", result.stdout, re.M)

    slapd.stop()  # the directory down: shown without it, and said so
    try:
        down = CliRunner().invoke(app, ["thresholds", "effective", "--account",
                                        issued.account.id])
    finally:
        slapd.start()
    assert down.exit_code == 0, down.output
    assert re.search(r"^quota_percent\s+90\.0\s+default\s*$", down.stdout, re.M)
    assert "did not answer" in down.stderr


def test_precedence_account_override_then_directory_then_customer(
    sqlite_db: Database, slapd: Slapd
):
    issued = make_account(sqlite_db)
    slapd.add_account(issued.account.name, backstopQuotaPercent="70")
    tenant = tenant_of(issued)
    with sqlite_db.session() as session:
        set_override(session, "customer", tenant.customer, "quota_percent", "60")
        set_override(session, "reseller", tenant.reseller, "quota_percent", "55")
    directory = synced(sqlite_db, slapd)
    with sqlite_db.session() as session:
        book = load_policies(session)
    book.directory = directory.values
    assert book.resolve("quota_percent", tenant) == (70.0, "directory")
    with sqlite_db.session() as session:
        set_override(session, "account", tenant.account, "quota_percent", "95")
        book = load_policies(session)
    book.directory = directory.values
    assert book.resolve("quota_percent", tenant) == (95.0, "account")


async def test_outage_keeps_the_last_values_and_a_change_is_picked_up_next_refresh(
    sqlite_db: Database, bus: Bus, own_slapd: Slapd, caplog: pytest.LogCaptureFixture
):
    issued = make_account(sqlite_db)
    own_slapd.add_account(issued.account.name, backstopQuotaPercent="70")
    tenant = tenant_of(issued)
    evaluator = Evaluator(sqlite_db, bus, EvaluatorSettings(**ldap(own_slapd)),  # type: ignore[arg-type]
                          replica_id="solo")
    assert await evaluator.sync_directory()
    assert evaluator.policies.resolve("quota_percent", tenant) == (70.0, "directory")

    own_slapd.stop()
    with caplog.at_level(logging.INFO, logger="services.evaluator.directory_thresholds"):
        for _ in range(3):
            assert not await evaluator.sync_directory()
            await evaluator.rebalance()  # the policies are re-read from the database too
            assert evaluator.policies.resolve("quota_percent", tenant) == (70.0, "directory")
        unavailable = [r for r in caplog.records if "directory unavailable" in r.getMessage()]
        assert len(unavailable) == 1  # logged once, not per refresh

        own_slapd.start()
        with own_slapd.admin() as conn:
            conn.modify(own_slapd.account_dn(issued.account.name),
                        {"backstopQuotaPercent": [("MODIFY_REPLACE", ["80"])]})
        assert await evaluator.sync_directory()
    assert evaluator.policies.resolve("quota_percent", tenant) == (80.0, "directory")
    assert any("answers again" in r.getMessage() for r in caplog.records)
    await evaluator.rebalance()
    assert evaluator.policies.resolve("quota_percent", tenant) == (80.0, "directory")
    await evaluator._stop_workers(set(evaluator.workers))
    evaluator.directory.close()  # type: ignore[union-attr]


def test_entries_match_accounts_by_the_filter_and_bad_values_are_ignored(
    sqlite_db: Database, slapd: Slapd, caplog: pytest.LogCaptureFixture
):
    good, bad, absent = (make_account(sqlite_db) for _ in range(3))
    slapd.add_account(good.account.name, backstopQuotaPercent="42.5",
                      description=f"backstop:{good.account.id}")
    slapd.add_account(bad.account.name, backstopQuotaPercent="lots",
                      description=f"backstop:{bad.account.id}")
    settings = EvaluatorSettings(**ldap(  # type: ignore[arg-type]
        slapd, ldap_account_filter="(&(objectClass=sstBackupAccount)"
                                   "(description=backstop:{account_id}))"))
    directory = DirectoryThresholds(settings)
    with sqlite_db.session() as session:
        paths = all_paths(session)
    assert directory.sync(paths)
    assert directory.values.get(good.account.id) == {"quota_percent": 42.5}
    assert bad.account.id not in directory.values and absent.account.id not in directory.values
    assert directory.sync(paths)
    assert sum("lots" in r.getMessage() for r in caplog.records) == 1  # once per value
