"""LDAP directory, following the stoney backup notification rules:

1. the account entry's warning flag (``sstBackupWarningOn``) decides whether the customer side
   is told at all;
2. if the entry has ``mail`` values and its medium (``sstNotificationWarningMedium``) is
   ``mail``, all of them are recipients;
3. otherwise the owner is looked up by ``sstBelongsToPersonUID`` and that person's ``mail``
   values are used.

Attribute names, bases and filters come from the settings; connections, searches and filter
escaping are :mod:`shared.directory`'s. Answers are cached briefly; an unreachable server raises
:class:`DirectoryUnavailable` (the planner retries later) instead of answering "nobody".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from ldap3.utils.conv import escape_filter_chars

from services.notifier.errors import RecipientNotFound
from shared.config import DirectorySettings
from shared.directory import Access, AccountEntries, Attributes, Connections, values
from shared.tenancy import AccountPath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LdapRules:
    account_base: str
    account_filter: str
    person_base: str
    person_filter: str
    warning_on: str = "sstBackupWarningOn"
    medium: str = "sstNotificationWarningMedium"
    owner: str = "sstBelongsToPersonUID"
    mail: str = "mail"

    @classmethod
    def from_settings(cls, s: DirectorySettings) -> LdapRules:
        return cls(s.ldap_account_base, s.ldap_account_filter, s.ldap_person_base,
                   s.ldap_person_filter, s.ldap_attr_warning_on, s.ldap_attr_medium,
                   s.ldap_attr_owner, s.ldap_attr_mail)

    @cached_property
    def accounts(self) -> AccountEntries:
        """Parsed once per rules (the filter's assertions), not on every lookup."""
        return AccountEntries(self.account_base, self.account_filter)

    def account_query(self, ref: AccountPath) -> str:
        return self.accounts.query(ref)

    def person_query(self, uid: str) -> str:
        return self.person_filter.format(uid=escape_filter_chars(uid))


def addresses_from(
    rules: LdapRules, account: Attributes, owner_mails: Callable[[str], list[str]]
) -> list[str]:
    """The rules themselves, on already fetched attributes: no I/O, easy to test."""
    flag = values(account, rules.warning_on)
    if not flag or flag[0].strip().upper() != "TRUE":
        return []
    mails = values(account, rules.mail)
    media = {m.strip().lower() for m in values(account, rules.medium)}
    if mails and "mail" in media:
        return mails
    owner = values(account, rules.owner)
    return owner_mails(owner[0]) if owner else []


def person_mails(pool: Connections, rules: LdapRules, uid: str) -> list[str]:
    """The ``mail`` values of the person ``uid`` (the account's owner), one search."""
    people = pool.search(rules.person_base, rules.person_query(uid), [rules.mail])
    return values(people[0].attributes, rules.mail) if people else []


class LdapDirectory:
    def __init__(self, settings: DirectorySettings, clock: Callable[[], float] = time.monotonic):
        self.rules = LdapRules.from_settings(settings)
        self._pool = Connections(Access.reader(settings))
        self._ttl = settings.ldap_cache_seconds
        self._negative_ttl = settings.ldap_negative_cache_seconds
        self._clock = clock
        # Per account id: until when the answer holds, and the addresses or the "no entry" error.
        self._cache: dict[str, tuple[float, list[str] | RecipientNotFound]] = {}

    async def customer_addresses(self, account: AccountPath) -> list[str]:
        hit = self._cache.get(account.account_id)
        if hit is not None and hit[0] > self._clock():
            if isinstance(hit[1], RecipientNotFound):
                raise RecipientNotFound(*hit[1].args)
            return hit[1]
        try:
            found = await asyncio.to_thread(self._lookup, account)
        except RecipientNotFound as missing:
            # Asked again on every alert otherwise; kept shorter so a new entry shows up soon.
            self._cache[account.account_id] = (self._clock() + self._negative_ttl, missing)
            raise
        self._cache[account.account_id] = (self._clock() + self._ttl, found)
        return found

    def _lookup(self, ref: AccountPath) -> list[str]:
        r = self.rules
        entries = self._pool.search(
            r.account_base, r.account_query(ref), [r.warning_on, r.medium, r.owner, r.mail]
        )
        if not entries:
            raise RecipientNotFound(f"no LDAP entry for account {ref.account!r}")
        return addresses_from(r, entries[0].attributes, self._owner_mails)

    def _owner_mails(self, uid: str) -> list[str]:
        return person_mails(self._pool, self.rules, uid)

    def close(self) -> None:
        self._pool.close()
