"""Self-care from the portal against a real slapd: the change lands in the account's entry
(seen by ldapsearch) and the next alert goes to the new addresses; other tenants and read-only
users are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.notifier.recipients.directory_ldap import LdapDirectory
from services.notifier.recipients.preferences import AccountPreferences, Change
from services.portal.actions import self_care
from services.portal.rights import NotFound, ReadOnly
from services.portal.users import Role
from shared.config import NotifierSettings
from shared.db import Database
from tests.notifier.support import MemoryMailer, alert, make_notifier, settle
from tests.portal.site import add_user, csrf_token, log_in, portal_app
from tests.portal.support import editor, scope_of
from tests.slapd import SUFFIX, WRITER_DN, WRITER_PW, Slapd
from tests.support import make_account, tenant_of


def directory_settings(server: Slapd) -> NotifierSettings:
    return NotifierSettings(
        ldap_url=server.url, ldap_account_base=f"ou=accounts,ou=backup,ou=services,{SUFFIX}",
        ldap_person_base=f"ou=people,{SUFFIX}", ldap_timeout=1.0, ldap_cache_seconds=0,
        ldap_negative_cache_seconds=0, ldap_write_bind_dn=WRITER_DN,
        ldap_write_bind_password=WRITER_PW)


async def test_a_customer_user_changes_the_directory_and_the_next_alert_follows(
        slapd: Slapd, sqlite_db: Database) -> None:
    acme = make_account(sqlite_db, reseller="MSP", customer="Acme")
    slapd.add_account(acme.account.name, sstBackupWarningOn="FALSE",
                      sstNotificationWarningMedium="mail", mail=["old@acme.example"])
    settings = directory_settings(slapd)
    store = AccountPreferences(sqlite_db, settings)
    try:
        with sqlite_db.session() as session:
            after = self_care.change_preferences(
                session, editor(scope_of(acme)), store, acme.account.id,
                Change(warning_on=True, mails=["new@acme.example"], quota_percent=85))
        assert after.recipients == ("new@acme.example",)
        seen = slapd.ldapsearch(slapd.account_dn(acme.account.name))
        assert seen["sstBackupWarningOn"] == ["TRUE"]
        assert seen["mail"] == ["new@acme.example"]
        assert seen["backstopQuotaPercent"] == ["85"]
    finally:
        store.close()

    mailer = MemoryMailer()
    directory = LdapDirectory(settings)
    try:
        notifier = make_notifier(sqlite_db, mailer=mailer, directory=directory)
        await notifier.handle(alert(tenant_of(acme)))
        await settle(notifier)
    finally:
        directory.close()
    assert [str(m["To"]) for m in mailer.sent] == ["new@acme.example"]


def test_other_tenants_and_read_only_users_are_refused(slapd: Slapd,
                                                       sqlite_db: Database) -> None:
    acme = make_account(sqlite_db, reseller="MSP", customer="Acme")
    globex = make_account(sqlite_db, reseller="MSP", customer="Globex")
    slapd.add_account(acme.account.name, sstBackupWarningOn="TRUE", mail=["a@acme.example"])
    store = AccountPreferences(sqlite_db, directory_settings(slapd))
    try:
        with sqlite_db.session() as session:
            with pytest.raises(NotFound):
                self_care.preferences(session, scope_of(globex), store, acme.account.id)
            with pytest.raises(NotFound):
                self_care.change_preferences(session, editor(scope_of(globex)), store,
                                             acme.account.id, Change(warning_on=False))
            with pytest.raises(ReadOnly):
                self_care.change_preferences(session, editor(scope_of(acme), read_only=True),
                                             store, acme.account.id, Change(warning_on=False))
            assert self_care.preferences(session, scope_of(acme), store,
                                         acme.account.id).mails == ("a@acme.example",)
        assert slapd.ldapsearch(slapd.account_dn(acme.account.name))[
            "sstBackupWarningOn"] == ["TRUE"]
    finally:
        store.close()


def portal_with_directory(db: Database, tmp_path: Path, server: Slapd,
                          writable: bool = True) -> TestClient:
    ldap = {"ldap_url": server.url,
            "ldap_account_base": f"ou=accounts,ou=backup,ou=services,{SUFFIX}",
            "ldap_person_base": f"ou=people,{SUFFIX}", "ldap_timeout": 1.0,
            "ldap_cache_seconds": 0, "ldap_negative_cache_seconds": 0}
    if writable:
        ldap |= {"ldap_write_bind_dn": WRITER_DN, "ldap_write_bind_password": WRITER_PW}
    return TestClient(portal_app(db, tmp_path, None, **ldap))


def test_the_preferences_page_writes_the_accounts_entry(slapd: Slapd, sqlite_db: Database,
                                                       tmp_path: Path) -> None:
    acme = make_account(sqlite_db, reseller="MSP", customer="Acme")
    slapd.add_account(acme.account.name, sstBackupWarningOn="FALSE",
                      sstNotificationWarningMedium="mail", mail=["old@acme.example"])
    add_user(sqlite_db, "user@acme.example", Role.customer, reseller="MSP", customer="Acme")
    with portal_with_directory(sqlite_db, tmp_path, slapd) as client:
        log_in(client, "user@acme.example")
        page = client.get(f"/accounts/{acme.account.id}/preferences")
        assert page.status_code == 200
        assert "Warn the customer" in page.text and "old@acme.example" in page.text
        answer = client.post(f"/accounts/{acme.account.id}/preferences", data={
            "warning_on": "on", "medium": "mail", "mails": "new@acme.example\nsecond@acme.example",
            "quota_percent": "85", "csrf_token": csrf_token(page.text)}, follow_redirects=False)
        assert answer.status_code == 303
        assert "new@acme.example, second@acme.example" in client.get(
            answer.headers["location"]).text
    seen = slapd.ldapsearch(slapd.account_dn(acme.account.name))
    assert seen["sstBackupWarningOn"] == ["TRUE"]
    assert sorted(seen["mail"]) == ["new@acme.example", "second@acme.example"]
    assert seen["backstopQuotaPercent"] == ["85"]


def test_without_write_access_the_form_is_read_only_and_a_post_refused(
        slapd: Slapd, sqlite_db: Database, tmp_path: Path) -> None:
    acme = make_account(sqlite_db, reseller="MSP", customer="Acme")
    slapd.add_account(acme.account.name, sstBackupWarningOn="TRUE", mail=["a@acme.example"])
    add_user(sqlite_db, "user@acme.example", Role.customer, reseller="MSP", customer="Acme")
    with portal_with_directory(sqlite_db, tmp_path, slapd, writable=False) as client:
        log_in(client, "user@acme.example")
        page = client.get(f"/accounts/{acme.account.id}/preferences")
        assert "shown read-only" in page.text and ">Save</button>" not in page.text
        answer = client.post(f"/accounts/{acme.account.id}/preferences", data={
            "warning_on": "off", "mails": "x@acme.example",
            "csrf_token": csrf_token(page.text)})
        assert answer.status_code == 422 and "write access" in answer.text
    assert slapd.ldapsearch(slapd.account_dn(acme.account.name))["mail"] == ["a@acme.example"]
