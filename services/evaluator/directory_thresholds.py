"""Thresholds kept in the accounts' LDAP entries (``quota_percent``, from the attribute named by
``BACKSTOP_LDAP_ATTR_QUOTA_PERCENT``), synced into the evaluator's policies.

The evaluator never asks the directory while it applies an event: every
``BACKSTOP_EVALUATOR_REFRESH_SECONDS`` one search (paged) reads the attribute of every account
entry, and each entry is matched back to Backstop's accounts through the account filter's
placeholders (:class:`shared.directory.AccountEntries`). While the directory cannot answer,
the last values read stay in force; the outage is logged once, and so is the recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from services.evaluator.policies import PolicyError, Value, parse_value
from shared.config import DirectorySettings
from shared.directory import (
    Access,
    AccountEntries,
    Connections,
    DirectoryError,
    Key,
    values,
)
from shared.tenancy import AccountPath

log = logging.getLogger(__name__)

SETTING = "quota_percent"
Found = dict[Key, tuple[str, str]]  # account key -> (entry DN, the attribute's value)


class DirectoryThresholds:
    """The directory's thresholds per account id, as of the last sync that succeeded."""

    def __init__(self, settings: DirectorySettings) -> None:
        self._entries = AccountEntries(settings.ldap_account_base, settings.ldap_account_filter)
        self._attribute = settings.ldap_attr_quota_percent
        self._pool = Connections(Access.reader(settings))
        self.values: dict[str, dict[str, Value]] = {}
        self.down = False
        self._refused: set[tuple[str, str]] = set()  # (dn, value) already logged as no percent

    def sync(self, accounts: Iterable[AccountPath]) -> bool:
        """:meth:`read` and :meth:`apply` in one (blocking)."""
        found = self.read()
        if found is None:
            return False
        self.apply(found, accounts)
        return True

    def read(self) -> Found | None:
        """Every account entry holding a threshold, by account key, read with one (paged)
        search; None when the directory cannot answer (the values in force stay). Blocking:
        run it in a thread."""
        try:
            entries = self._pool.search_all(
                self._entries.base, self._entries.query_all(),
                [self._attribute, *self._entries.key_attributes])
        except DirectoryError as exc:
            if not self.down:
                log.warning("directory unavailable: keeping the quota thresholds last read from "
                            "it (%d accounts) until it answers again: %s", len(self.values), exc)
            self.down = True
            return None
        if self.down:
            log.info("directory answers again: quota thresholds re-read")
        self.down = False
        found: Found = {}
        for entry in entries:
            raw = values(entry.attributes, self._attribute)
            key = self._entries.key_of_entry(entry.attributes)
            if raw and key is not None:
                found.setdefault(key, (entry.dn, raw[0]))
        return found

    def wanted(self, found: Found) -> tuple[str, set[str]] | None:
        """Which accounts the entries found can belong to, as (``account`` or ``account_id``,
        the names or ids), so that only those are loaded; None: any account may."""
        for placeholder in ("account_id", "account"):
            if placeholder in self._entries.placeholders:
                return placeholder, {dict(key)[placeholder] for key in found}
        return None

    def apply(self, found: Found, accounts: Iterable[AccountPath]) -> None:
        """Put the thresholds of the entries ``found`` in force for the ``accounts`` they match
        (every other account has none from the directory)."""
        values_now: dict[str, dict[str, Value]] = {}
        for account in accounts:
            hit = found.get(self._entries.key_of(account))
            if hit is not None:
                value = self._percent(*hit)
                if value is not None:
                    values_now[account.account_id] = {SETTING: value}
        self.values = values_now

    def of_account(self, account: AccountPath) -> dict[str, Value]:
        """One account's thresholds, read now with one search (for ``thresholds effective``,
        never per event). Raises :class:`~shared.directory.DirectoryUnavailable`."""
        found = self._pool.search(self._entries.base, self._entries.query(account),
                                  [self._attribute], size_limit=1)
        raw = values(found[0].attributes, self._attribute) if found else []
        value = self._percent(found[0].dn, raw[0]) if raw else None
        return {} if value is None else {SETTING: value}

    def _percent(self, dn: str, raw: str) -> Value | None:
        try:
            return parse_value(SETTING, raw.strip())
        except PolicyError as exc:
            if (dn, raw) not in self._refused:  # once per value, not on every refresh
                self._refused.add((dn, raw))
                log.warning("ignoring %s of %s: %s", self._attribute, dn, exc)
            return None

    def close(self) -> None:
        self._pool.close()
