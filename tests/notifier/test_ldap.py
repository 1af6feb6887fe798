"""LDAP recipients, against a real slapd carrying deploy/ldap/backstop.schema."""

from __future__ import annotations

import uuid

import pytest

from services.notifier.errors import DirectoryUnavailable, RecipientNotFound
from services.notifier.recipients.directory_ldap import LdapDirectory, LdapRules, addresses_from
from shared.config import NotifierSettings
from shared.db import Database
from shared.tenancy import AccountPath
from tests.notifier.support import MemoryMailer, alert, make_notifier, settle
from tests.slapd import SUFFIX, Slapd
from tests.support import make_account, tenant_of

RULES = LdapRules("ou=a", "(uid={account})", "ou=p", "(uid={uid})")


def settings_for(server: Slapd, **overrides: object) -> NotifierSettings:
    return NotifierSettings(
        ldap_url=server.url, ldap_account_base=f"ou=accounts,ou=backup,ou=services,{SUFFIX}",
        ldap_person_base=f"ou=people,{SUFFIX}", ldap_timeout=1.0, **overrides,  # type: ignore[arg-type]
    )


def ref(name: str) -> AccountPath:
    return AccountPath(reseller_id="res-id", reseller="Reseller", customer_id="cust-id",
                       customer="Customer", account_id="id-" + name, account=name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the rules, without a server ---------------------------------------------------------------


def test_rules_flag_off_means_nobody():
    entry = {"sstBackupWarningOn": ["FALSE"], "mail": ["a@x"], "sstNotificationWarningMedium":
             ["mail"]}
    assert addresses_from(RULES, entry, lambda uid: pytest.fail("no owner lookup")) == []
    assert addresses_from(RULES, {"mail": ["a@x"]}, lambda uid: ["o@x"]) == []


def test_rules_own_mail_needs_medium_mail_else_owner():
    entry = {"sstbackupwarningon": ["TRUE"], "mail": ["a@x", "b@x"],
             "sstNotificationWarningMedium": ["Mail"], "sstBelongsToPersonUID": ["p1"]}
    assert addresses_from(RULES, entry, lambda uid: ["o@x"]) == ["a@x", "b@x"]
    entry["sstNotificationWarningMedium"] = ["sms"]
    assert addresses_from(RULES, entry, lambda uid: [f"{uid}@owner"]) == ["p1@owner"]
    del entry["mail"]
    entry["sstNotificationWarningMedium"] = ["mail"]
    assert addresses_from(RULES, entry, lambda uid: [f"{uid}@owner"]) == ["p1@owner"]
    del entry["sstBelongsToPersonUID"]
    assert addresses_from(RULES, entry, lambda uid: ["never"]) == []


def test_filter_values_are_escaped():
    assert RULES.account_query(ref("*)(uid=*")) == r"(uid=\2a\29\28uid=\2a)"
    assert RULES.person_query("a\\b") == r"(uid=a\5cb)"


# --- against slapd ----------------------------------------------------------------------------


async def test_account_mail_when_medium_is_mail(slapd: Slapd):
    name = unique("acc")
    slapd.add_account(name, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                      mail=["one@customer.example", "two@customer.example"])
    directory = LdapDirectory(settings_for(slapd))
    assert sorted(await directory.customer_addresses(ref(name))) == [
        "one@customer.example", "two@customer.example"]


async def test_owner_mail_when_account_has_none(slapd: Slapd):
    person, name = unique("person"), unique("acc")
    slapd.add_person(person, ["owner@customer.example", "owner2@customer.example"])
    slapd.add_account(name, sstBackupWarningOn="TRUE", sstBelongsToPersonUID=person)
    directory = LdapDirectory(settings_for(slapd))
    assert sorted(await directory.customer_addresses(ref(name))) == [
        "owner2@customer.example", "owner@customer.example"]


async def test_flag_false_tells_nobody_and_missing_entry_is_not_found(slapd: Slapd):
    name = unique("acc")
    slapd.add_account(name, sstBackupWarningOn="FALSE", sstNotificationWarningMedium="mail",
                      mail=["quiet@customer.example"])
    directory = LdapDirectory(settings_for(slapd))
    assert await directory.customer_addresses(ref(name)) == []
    with pytest.raises(RecipientNotFound):
        await directory.customer_addresses(ref(unique("missing")))


async def test_injection_does_not_match_other_entries(slapd: Slapd):
    victim = unique("victim")
    slapd.add_account(victim, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                      mail=["victim@customer.example"])
    directory = LdapDirectory(settings_for(slapd))
    for evil in ("*", "*)(uid=*", f"{victim[:4]}*", f"{victim})(|(uid=*"):
        with pytest.raises(RecipientNotFound):
            await directory.customer_addresses(ref(evil))


async def test_configurable_attribute_names_and_filter(slapd: Slapd):
    name = unique("acc")
    slapd.add_account(name, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                      mail=["x@customer.example"], description=f"backstop:{name}")
    settings = settings_for(slapd, ldap_account_filter="(description=backstop:{account_id})")
    directory = LdapDirectory(settings)
    other = AccountPath(reseller_id="r", reseller="R", customer_id="c", customer="C",
                        account_id=name, account="other")
    found = await directory.customer_addresses(other)
    assert found == ["x@customer.example"]


async def test_answers_are_cached_briefly(slapd: Slapd):
    name = unique("acc")
    slapd.add_account(name, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                      mail=["before@customer.example"])
    now = [0.0]
    directory = LdapDirectory(settings_for(slapd, ldap_cache_seconds=60), clock=lambda: now[0])
    assert await directory.customer_addresses(ref(name)) == ["before@customer.example"]
    with slapd.admin() as conn:
        conn.modify(f"uid={name},ou=accounts,ou=backup,ou=services,{SUFFIX}",
                    {"mail": [("MODIFY_REPLACE", ["after@customer.example"])]})
    assert await directory.customer_addresses(ref(name)) == ["before@customer.example"]
    now[0] = 61
    assert await directory.customer_addresses(ref(name)) == ["after@customer.example"]


async def test_ldap_down_delays_notifications_never_drops_them(own_slapd: Slapd,
                                                              sqlite_db: Database):
    issued = make_account(sqlite_db, contacts=["db-contact@example.com"])
    own_slapd.add_account(issued.account.name, sstBackupWarningOn="TRUE",
                          sstNotificationWarningMedium="mail", mail=["ldap@customer.example"])
    directory = LdapDirectory(settings_for(own_slapd, ldap_cache_seconds=0))
    mailer = MemoryMailer()
    notifier = make_notifier(sqlite_db, mailer=mailer, directory=directory)
    clock = notifier.clock
    own_slapd.stop()

    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert mailer.sent == []
    with pytest.raises(DirectoryUnavailable):
        await directory.customer_addresses(ref(issued.account.name))

    own_slapd.start()
    clock.advance(2)  # type: ignore[attr-defined]
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["ldap@customer.example"]


async def test_reseller_is_told_at_once_while_ldap_is_down(own_slapd: Slapd, sqlite_db: Database):
    from services.notifier import admin

    issued = make_account(sqlite_db)
    own_slapd.add_account(issued.account.name, sstBackupWarningOn="TRUE",
                          sstNotificationWarningMedium="mail", mail=["ldap@customer.example"])
    with sqlite_db.session() as s:
        admin.set_contacts(s, "Reseller", None, ["noc@reseller.example"])
    mailer = MemoryMailer()
    directory = LdapDirectory(settings_for(own_slapd, ldap_cache_seconds=0))
    notifier = make_notifier(sqlite_db, mailer=mailer, directory=directory)
    own_slapd.stop()

    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["noc@reseller.example"]

    await notifier.plan_due()  # still down, retried: nothing twice
    notifier.clock.advance(2)  # type: ignore[attr-defined]
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["noc@reseller.example"]

    own_slapd.start()
    notifier.clock.advance(600)  # type: ignore[attr-defined]
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["noc@reseller.example",
                                                  "ldap@customer.example"]


async def test_reseller_is_told_whatever_the_customer_flag(slapd: Slapd, sqlite_db: Database):
    from services.notifier import admin

    issued = make_account(sqlite_db, contacts=["ignored-in-ldap-mode@example.com"])
    slapd.add_account(issued.account.name, sstBackupWarningOn="FALSE",
                      sstNotificationWarningMedium="mail", mail=["customer@customer.example"])
    with sqlite_db.session() as s:
        admin.set_contacts(s, "Reseller", None, ["noc@reseller.example"])
    mailer = MemoryMailer()
    notifier = make_notifier(sqlite_db, mailer=mailer,
                             directory=LdapDirectory(settings_for(slapd)))
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["noc@reseller.example"]


async def test_slapd_restart_is_survived_by_pooled_connections(own_slapd: Slapd):
    name = unique("acc")
    own_slapd.add_account(name, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                          mail=["a@customer.example"])
    directory = LdapDirectory(settings_for(own_slapd, ldap_cache_seconds=0))
    assert await directory.customer_addresses(ref(name)) == ["a@customer.example"]
    own_slapd.stop()
    own_slapd.start()  # same port, same data: the pooled connection is now stale
    assert await directory.customer_addresses(ref(name)) == ["a@customer.example"]
    directory.close()


async def test_missing_entry_is_cached_briefly(slapd: Slapd):
    name = unique("late")
    now = [0.0]
    directory = LdapDirectory(settings_for(slapd, ldap_negative_cache_seconds=30),
                              clock=lambda: now[0])
    with pytest.raises(RecipientNotFound):
        await directory.customer_addresses(ref(name))
    slapd.add_account(name, sstBackupWarningOn="TRUE", sstNotificationWarningMedium="mail",
                      mail=["late@customer.example"])
    with pytest.raises(RecipientNotFound):  # answered from the cache, no second search
        await directory.customer_addresses(ref(name))
    now[0] = 31
    assert await directory.customer_addresses(ref(name)) == ["late@customer.example"]
    directory.close()
