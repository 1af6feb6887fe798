"""Self-care from the portal against a real slapd: the change lands in the account's entry
(seen by ldapsearch) and the next alert goes to the new addresses; other tenants and read-only
users are refused."""

from __future__ import annotations

import pytest

from services.notifier.recipients.directory_ldap import LdapDirectory
from services.notifier.recipients.preferences import AccountPreferences, Change
from services.portal.actions import self_care
from services.portal.rights import NotFound, ReadOnly
from shared.config import NotifierSettings
from shared.db import Database
from tests.notifier.support import MemoryMailer, alert, make_notifier, settle
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
