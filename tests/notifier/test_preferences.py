"""Self-care preferences: kept in a real slapd (read by `ldapsearch` and by the next alert) when
a directory is configured, in the database otherwise."""

from __future__ import annotations

import logging

import pytest

from services.evaluator.directory_thresholds import DirectoryThresholds
from services.evaluator.store import set_override
from services.notifier.recipients.directory_ldap import LdapDirectory
from services.notifier.recipients.preferences import (
    AccountEntryMissing,
    AccountPreferences,
    Change,
    InvalidPreference,
    PreferenceNotKept,
    PreferencesReadOnly,
)
from shared.config import DirectorySettings, NotifierSettings
from shared.db import Database
from shared.directory import DirectoryRefused, DirectoryUnavailable
from shared.tenancy import AccountNotFound, all_paths
from tests.notifier.support import MemoryMailer, alert, make_notifier, settle
from tests.slapd import ROOT_PW, SUFFIX, WRITER_DN, WRITER_PW, Slapd
from tests.support import make_account, tenant_of


def directory_settings(server: Slapd, **overrides: object) -> NotifierSettings:
    values: dict[str, object] = {
        "ldap_url": server.url, "ldap_account_base": f"ou=accounts,ou=backup,ou=services,{SUFFIX}",
        "ldap_person_base": f"ou=people,{SUFFIX}", "ldap_timeout": 1.0, "ldap_cache_seconds": 0,
        "ldap_write_bind_dn": WRITER_DN, "ldap_write_bind_password": WRITER_PW, **overrides}
    return NotifierSettings(**values)  # type: ignore[arg-type]


def ldap_account(db: Database, server: Slapd, **attrs: object) -> str:
    issued = make_account(db)
    server.add_account(issued.account.name, **attrs)
    return issued.account.id


def test_directory_preferences_are_read(slapd: Slapd, sqlite_db: Database):
    person = f"owner-{id(sqlite_db)}"
    slapd.add_person(person, ["owner@customer.example"])
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="TRUE",
                           sstNotificationWarningMedium="sms", sstBelongsToPersonUID=person,
                           mail=["own@customer.example"], backstopQuotaPercent="80")
    prefs = AccountPreferences(sqlite_db, directory_settings(slapd)).read(account)
    assert prefs.source == "directory" and prefs.writable and prefs.entry_dn
    assert (prefs.warning_on, prefs.medium, prefs.mails) == (True, "sms",
                                                             ("own@customer.example",))
    assert prefs.recipients == ("owner@customer.example",)  # medium is not mail: the owner
    assert (prefs.quota_percent, prefs.quota_percent_in_force,
            prefs.quota_percent_from) == (80.0, 80.0, "directory")


def test_change_is_written_to_the_directory_attribute_by_attribute(
    slapd: Slapd, sqlite_db: Database, caplog: pytest.LogCaptureFixture
):
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="FALSE",
                           sstNotificationWarningMedium="mail", mail=["old@customer.example"])
    preferences = AccountPreferences(sqlite_db, directory_settings(slapd))
    dn = preferences.read(account).entry_dn
    assert dn is not None
    with caplog.at_level(logging.INFO, logger="backstop.audit"):
        after = preferences.change(account, Change(
            warning_on=True, medium="mail", mails=["new@customer.example", "b@customer.example"],
            quota_percent=85), actor="portal:alice@reseller.example")

    seen = slapd.ldapsearch(dn)
    assert seen["sstBackupWarningOn"] == ["TRUE"]
    assert sorted(seen["mail"]) == ["b@customer.example", "new@customer.example"]
    assert seen["backstopQuotaPercent"] == ["85"]
    assert seen["sstNotificationWarningMedium"] == ["mail"]
    # One modify, replacing only what changed (the medium was already mail).
    assert slapd.modified_attributes(dn) == [["sstBackupWarningOn", "mail",
                                              "backstopQuotaPercent"]]
    assert after.recipients == ("new@customer.example", "b@customer.example")
    assert after.quota_percent_in_force == 85.0

    (line,) = [r for r in caplog.records if r.name == "backstop.audit"]
    assert "portal:alice@reseller.example" in line.getMessage()
    assert line.actor == "portal:alice@reseller.example"  # type: ignore[attr-defined]
    assert line.changes["mail"] == {  # type: ignore[attr-defined]
        "from": ["old@customer.example"],
        "to": ["new@customer.example", "b@customer.example"]}
    assert WRITER_PW not in caplog.text and ROOT_PW not in caplog.text

    preferences.change(account, Change(medium="mail"), actor="cli:ops")  # nothing differs
    assert len(slapd.modified_attributes(dn)) == 1


async def test_change_reaches_the_next_alert(slapd: Slapd, sqlite_db: Database):
    issued = make_account(sqlite_db)
    slapd.add_account(issued.account.name, sstBackupWarningOn="TRUE",
                      sstNotificationWarningMedium="mail", mail=["before@customer.example"])
    settings = directory_settings(slapd)
    AccountPreferences(sqlite_db, settings).change(
        issued.account.id, Change(mails=["after@customer.example"]), actor="test")
    mailer = MemoryMailer()
    notifier = make_notifier(sqlite_db, mailer=mailer, directory=LdapDirectory(settings))
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["after@customer.example"]


def test_clearing_the_threshold_and_the_operator_override_wins(slapd: Slapd, sqlite_db: Database):
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="TRUE", backstopQuotaPercent="70")
    preferences = AccountPreferences(sqlite_db, directory_settings(slapd))
    with sqlite_db.session() as session:
        set_override(session, "account", account, "quota_percent", "95")
    masked = preferences.read(account)
    assert (masked.quota_percent, masked.quota_percent_in_force,
            masked.quota_percent_from, masked.quota_masked) == (70.0, 95.0, "account", True)
    cleared = preferences.change(account, Change(clear_quota_percent=True), actor="test")
    assert cleared.quota_percent is None
    assert "backstopQuotaPercent" not in slapd.ldapsearch(cleared.entry_dn or "")


def test_without_write_credentials_the_directory_is_read_only(slapd: Slapd,
                                                              sqlite_db: Database):
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="TRUE")
    preferences = AccountPreferences(sqlite_db, directory_settings(slapd, ldap_write_bind_dn=""))
    assert not preferences.read(account).writable
    with pytest.raises(PreferencesReadOnly):
        preferences.change(account, Change(warning_on=False), actor="test")


def test_a_bind_dn_without_write_rights_is_refused(slapd: Slapd, sqlite_db: Database):
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="TRUE")
    reader = slapd.add_person(f"reader-{account}", ["r@example.com"], password="pw")
    preferences = AccountPreferences(sqlite_db, directory_settings(
        slapd, ldap_write_bind_dn=reader, ldap_write_bind_password="pw"))
    with pytest.raises(DirectoryRefused, match="50"):  # insufficientAccessRights
        preferences.change(account, Change(warning_on=False), actor="test")
    wrong = AccountPreferences(sqlite_db, directory_settings(
        slapd, ldap_write_bind_password="not-it"))
    with pytest.raises(DirectoryRefused, match="cannot bind"):
        wrong.change(account, Change(warning_on=False), actor="test")


def test_missing_entry_bad_values_and_unknown_account(slapd: Slapd, sqlite_db: Database):
    no_entry = make_account(sqlite_db).account.id
    preferences = AccountPreferences(sqlite_db, directory_settings(slapd))
    assert preferences.read(no_entry).entry_dn is None
    with pytest.raises(AccountEntryMissing):
        preferences.change(no_entry, Change(warning_on=True), actor="test")
    with pytest.raises(InvalidPreference):
        preferences.change(no_entry, Change(mails=["not an address"]), actor="test")
    with pytest.raises(InvalidPreference):
        preferences.change(no_entry, Change(quota_percent=-3), actor="test")
    with pytest.raises(InvalidPreference):
        preferences.change(no_entry, Change(medium="mail)(uid=*"), actor="test")
    with pytest.raises(AccountNotFound):
        preferences.read("no-such-account")


def test_directory_down_is_unavailable(own_slapd: Slapd, sqlite_db: Database):
    account = ldap_account(sqlite_db, own_slapd, sstBackupWarningOn="TRUE")
    preferences = AccountPreferences(sqlite_db, directory_settings(own_slapd))
    own_slapd.stop()
    with pytest.raises(DirectoryUnavailable):
        preferences.read(account)
    with pytest.raises(DirectoryUnavailable):
        preferences.change(account, Change(warning_on=False), actor="test")


def test_database_preferences(db: Database, caplog: pytest.LogCaptureFixture):
    account = make_account(db, contacts=["one@customer.example"]).account.id
    preferences = AccountPreferences(db, DirectorySettings())
    before = preferences.read(account)
    assert (before.source, before.mails, before.warning_on) == (
        "database", ("one@customer.example",), None)
    assert (before.quota_percent, before.quota_percent_from) == (None, "default")
    with caplog.at_level(logging.INFO, logger="backstop.audit"):
        after = preferences.change(account, Change(mails=["two@customer.example"],
                                                   quota_percent=75.5), actor="cli:ops")
    assert after.mails == ("two@customer.example",) == after.recipients
    assert (after.quota_percent, after.quota_percent_in_force,
            after.quota_percent_from) == (75.5, 75.5, "account")
    assert "cli:ops" in caplog.text and "quota_percent" in caplog.text
    with pytest.raises(PreferenceNotKept):
        preferences.change(account, Change(warning_on=False), actor="cli:ops")
    cleared = preferences.change(account, Change(clear_quota_percent=True), actor="cli:ops")
    assert (cleared.quota_percent, cleared.quota_percent_from) == (None, "default")


def test_threshold_change_reaches_the_evaluator_on_its_next_refresh(slapd: Slapd,
                                                                    sqlite_db: Database):
    account = ldap_account(sqlite_db, slapd, sstBackupWarningOn="TRUE", backstopQuotaPercent="70")
    settings = directory_settings(slapd)
    thresholds = DirectoryThresholds(settings)
    with sqlite_db.session() as session:
        paths = all_paths(session)
    assert thresholds.sync(paths) and thresholds.values[account] == {"quota_percent": 70.0}
    AccountPreferences(sqlite_db, settings).change(account, Change(quota_percent=88),
                                                   actor="test")
    assert thresholds.sync(paths) and thresholds.values[account] == {"quota_percent": 88.0}
