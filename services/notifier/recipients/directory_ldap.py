"""LDAP directory, following the stoney backup notification rules:

1. the account entry's warning flag (``sstBackupWarningOn``) decides whether the customer side
   is told at all;
2. if the entry has ``mail`` values and its medium (``sstNotificationWarningMedium``) is
   ``mail``, all of them are recipients;
3. otherwise the owner is looked up by ``sstBelongsToPersonUID`` and that person's ``mail``
   values are used.

Attribute names, bases and filters come from the settings; every value put into a filter is
escaped. Answers are cached briefly, connections pooled; an unreachable server raises
:class:`DirectoryUnavailable` (the planner retries later) instead of answering "nobody".
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException
from ldap3.utils.conv import escape_filter_chars

from services.notifier.errors import DirectoryUnavailable, RecipientNotFound
from shared.config import NotifierSettings
from shared.tenancy import AccountPath

log = logging.getLogger(__name__)

Attributes = Mapping[str, list[str]]


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
    def from_settings(cls, s: NotifierSettings) -> LdapRules:
        return cls(s.ldap_account_base, s.ldap_account_filter, s.ldap_person_base,
                   s.ldap_person_filter, s.ldap_attr_warning_on, s.ldap_attr_medium,
                   s.ldap_attr_owner, s.ldap_attr_mail)

    def account_query(self, ref: AccountPath) -> str:
        e = escape_filter_chars
        return self.account_filter.format(
            account=e(ref.account), account_id=e(ref.account_id),
            customer=e(ref.customer), reseller=e(ref.reseller),
        )

    def person_query(self, uid: str) -> str:
        return self.person_filter.format(uid=escape_filter_chars(uid))


def _values(entry: Attributes, name: str) -> list[str]:
    # Attribute names are case-insensitive in LDAP.
    for key, values in entry.items():
        if key.lower() == name.lower():
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return []


def addresses_from(
    rules: LdapRules, account: Attributes, owner_mails: Callable[[str], list[str]]
) -> list[str]:
    """The rules themselves, on already fetched attributes: no I/O, easy to test."""
    flag = _values(account, rules.warning_on)
    if not flag or flag[0].strip().upper() != "TRUE":
        return []
    mails = _values(account, rules.mail)
    media = {m.strip().lower() for m in _values(account, rules.medium)}
    if mails and "mail" in media:
        return mails
    owner = _values(account, rules.owner)
    return owner_mails(owner[0]) if owner else []


class _Pool:
    """A few bound connections, reused; one that failed is thrown away, not returned."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._urls = [u.strip() for u in settings.ldap_url.split(",") if u.strip()]
        self._settings = settings
        self._idle: queue.LifoQueue[ldap3.Connection] = queue.LifoQueue(settings.ldap_pool_size)

    def _connect(self) -> ldap3.Connection:
        # Each server in turn, as a fresh Server object: ldap3's ServerPool sleeps 10 s between
        # rounds, and a Server remembers a refused address as invalid even after it is back.
        s = self._settings
        error: Exception = DirectoryUnavailable("no LDAP server configured")
        for url in self._urls:
            try:
                return ldap3.Connection(
                    ldap3.Server(url, connect_timeout=s.ldap_timeout, get_info=ldap3.NONE),
                    user=s.ldap_bind_dn or None, password=s.ldap_bind_password or None,
                    # ldap3 packs the timeout into a socket option: whole seconds only.
                    auto_bind=True, read_only=True,
                    receive_timeout=max(1, math.ceil(s.ldap_timeout)), raise_exceptions=False,
                )
            except LDAPException as exc:
                error = exc
        raise error

    def search(self, base: str, query: str, attributes: list[str]) -> list[dict[str, Any]]:
        try:
            pooled = self._idle.get_nowait()
        except queue.Empty:
            pooled = None
        if pooled is not None:
            try:
                return self._search_on(pooled, base, query, attributes)
            except LDAPCommunicationError:
                # A server restart leaves every pooled connection dead while the directory is
                # fine: drop them all and try once on a fresh one before calling it unavailable.
                log.info("pooled LDAP connection was stale; retrying on a fresh one")
                self.close()
        try:
            return self._search_on(self._fresh(), base, query, attributes)
        except LDAPCommunicationError as exc:
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc

    def _fresh(self) -> ldap3.Connection:
        try:
            return self._connect()
        except LDAPException as exc:
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc

    def _search_on(
        self, conn: ldap3.Connection, base: str, query: str, attributes: list[str]
    ) -> list[dict[str, Any]]:
        """Search on ``conn``; it goes back to the pool on success and is thrown away on failure.
        Communication errors propagate as they are, so that a stale pooled connection can be
        told apart; the caller maps them."""
        try:
            ok = conn.search(base, query, ldap3.SUBTREE, attributes=attributes, size_limit=10)
            result = conn.result or {}
            if not ok and result.get("result") not in (0, 4, 32):  # 32: no such base
                raise DirectoryUnavailable(f"LDAP search failed: {result.get('description')}")
            entries = [dict(r["attributes"]) for r in (conn.response or [])
                       if r.get("type") == "searchResEntry"]
        except LDAPCommunicationError:
            _discard(conn)
            raise
        except LDAPException as exc:
            _discard(conn)
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc
        except DirectoryUnavailable:
            _discard(conn)
            raise
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.unbind()
        return entries

    def close(self) -> None:
        while True:
            try:
                _discard(self._idle.get_nowait())
            except queue.Empty:
                return


def _discard(conn: ldap3.Connection) -> None:
    # Unbinding a connection whose socket the server already closed may itself fail.
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass


class LdapDirectory:
    def __init__(self, settings: NotifierSettings, clock: Callable[[], float] = time.monotonic):
        self.rules = LdapRules.from_settings(settings)
        self._pool = _Pool(settings)
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
        return addresses_from(r, entries[0], self._owner_mails)

    def _owner_mails(self, uid: str) -> list[str]:
        r = self.rules
        people = self._pool.search(r.person_base, r.person_query(uid), [r.mail])
        return _values(people[0], r.mail) if people else []

    def close(self) -> None:
        self._pool.close()
