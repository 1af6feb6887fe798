"""An account's notification preferences, as the reseller or customer sees and changes them
(self-care): whether the customer side is warned at all, the medium, the account's own mail
addresses, and its quota threshold.

Where they live follows where the notifier and the evaluator read them:

* with a directory (``BACKSTOP_LDAP_URL``), the account's LDAP entry: ``sstBackupWarningOn``,
  ``sstNotificationWarningMedium``, ``mail`` and the quota attribute (names from the settings).
  Changes bind as ``BACKSTOP_LDAP_WRITE_BIND_DN`` and replace only the attributes whose value
  changes, in one modify operation; without write credentials the preferences are read-only
  (:class:`PreferencesReadOnly`);
* without one, the database: the account's contacts and its ``quota_percent`` override. The
  database keeps no warning flag or medium (:class:`PreferenceNotKept`).

Every change is logged as one audit line (logger ``backstop.audit``) naming who changed which
attribute from what to what; bind passwords never appear. Blocking (ldap3, the database): call
from a thread (FastAPI ``def`` endpoints, ``asyncio.to_thread``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from sqlmodel import select

from services.evaluator.policies import PolicyBook, PolicyError, Source, parse_value
from services.evaluator.store import load_policies, set_override
from services.evaluator.tables import ThresholdOverride
from services.notifier.channels.headers import address
from services.notifier.recipients.directory_ldap import LdapRules, addresses_from, person_mails
from shared.config import DirectorySettings
from shared.db import Database
from shared.directory import (
    Access,
    Attributes,
    Connections,
    Entry,
    configured,
    values,
)
from shared.events import Tenant
from shared.tenancy import Account, AccountPath, lookup_path

audit = logging.getLogger("backstop.audit")

QUOTA = "quota_percent"
MEDIUM = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PreferencesError(Exception):
    """A change of preferences that cannot be made as asked (HTTP: 4xx with this message)."""


class PreferencesReadOnly(PreferencesError):
    """The directory keeps the preferences and no write credentials are configured
    (``BACKSTOP_LDAP_WRITE_BIND_DN``)."""


class PreferenceNotKept(PreferencesError):
    """The store in use has no place for this preference (the database keeps no warning flag
    and no medium)."""


class InvalidPreference(PreferencesError):
    """A value that cannot be stored: not an e-mail address, a percent out of range, …"""


class AccountEntryMissing(PreferencesError):
    """The directory keeps the preferences but has no entry for this account."""


@dataclass(frozen=True)
class Preferences:
    """What is set for one account, and what is in force."""

    account_id: str
    source: Literal["directory", "database"]
    writable: bool
    entry_dn: str | None  # the account's directory entry (directory source), when it has one
    warning_on: bool | None  # None: not set (directory: nobody is warned), or not kept (database)
    medium: str | None
    mails: tuple[str, ...]  # the account's own addresses (entry's mail, or database contacts)
    recipients: tuple[str, ...]  # who on the customer side is told now, by the rules
    quota_percent: float | None  # the account's own threshold; None: inherited
    quota_percent_in_force: float
    quota_percent_from: Source  # where the value in force comes from

    @property
    def quota_masked(self) -> bool:
        """The account's own threshold is not the one in force: an operator's per-account
        database override beats the directory's value."""
        own: Source = "directory" if self.source == "directory" else "account"
        return self.quota_percent is not None and self.quota_percent_from != own


@dataclass(frozen=True)
class Change:
    """What to change; None leaves a preference as it is."""

    warning_on: bool | None = None
    medium: str | None = None
    mails: list[str] | None = None  # an empty list removes every address
    quota_percent: float | None = None
    clear_quota_percent: bool = False  # drop the account's own threshold: inherited again

    def is_empty(self) -> bool:
        return (self.warning_on is None and self.medium is None and self.mails is None
                and self.quota_percent is None and not self.clear_quota_percent)


class AccountPreferences:
    """Read and change accounts' notification preferences (see the module's docstring)."""

    def __init__(self, db: Database, settings: DirectorySettings) -> None:
        self._db = db
        self._settings = settings
        self._rules = LdapRules.from_settings(settings)
        self._quota_attribute = settings.ldap_attr_quota_percent
        self._directory = configured(settings)
        self._reader = Connections(Access.reader(settings)) if self._directory else None
        writer = Access.writer(settings) if self._directory else None
        self._writer = Connections(writer) if writer is not None else None

    @property
    def source(self) -> Literal["directory", "database"]:
        return "directory" if self._directory else "database"

    def read(self, account_id: str) -> Preferences:
        """The account's preferences. Raises :class:`~shared.tenancy.AccountNotFound`, and
        :class:`~shared.directory.DirectoryUnavailable` when the directory cannot answer."""
        path, book = self._db_state(account_id)
        if not self._directory:
            return self._from_database(path, book)
        return self._from_directory(path, book, self._entry(path))

    def change(self, account_id: str, change: Change, *, actor: str) -> Preferences:
        """Apply ``change`` for ``actor`` (who asked: a user's login, ``cli:<user>``; it goes
        into the audit line) and return the preferences now in force.

        Raises :class:`PreferencesError` subclasses for a change that cannot be made,
        :class:`~shared.tenancy.AccountNotFound`, and from the directory
        :class:`~shared.directory.DirectoryUnavailable` (try later) or
        :class:`~shared.directory.DirectoryRefused` (it said no, e.g. no write access)."""
        checked = _checked(change)
        if not self._directory:
            return self._change_database(account_id, checked, actor)
        return self._change_directory(account_id, checked, actor)

    def close(self) -> None:
        for pool in (self._reader, self._writer):
            if pool is not None:
                pool.close()

    # --- the database -------------------------------------------------------------------------

    def _db_state(self, account_id: str) -> tuple[AccountPath, PolicyBook]:
        with self._db.session() as session:
            return lookup_path(session, account_id), load_policies(session)

    def _from_database(self, path: AccountPath, book: PolicyBook) -> Preferences:
        with self._db.session() as session:
            row = session.get(Account, path.account_id)
            mails = tuple(row.contacts) if row is not None else ()
        own = book.overrides.get(("account", path.account_id), {}).get(QUOTA)
        value, source = book.resolve(QUOTA, _tenant(path))
        return Preferences(
            account_id=path.account_id, source="database", writable=True, entry_dn=None,
            warning_on=None, medium=None, mails=mails, recipients=mails,
            quota_percent=None if own is None else float(own),
            quota_percent_in_force=float(value), quota_percent_from=source)

    def _change_database(self, account_id: str, change: Change, actor: str) -> Preferences:
        if change.warning_on is not None or change.medium is not None:
            raise PreferenceNotKept(
                "the database keeps no warning flag or medium: the account's contacts are told "
                "whenever there are any (these are kept in the LDAP directory when "
                "BACKSTOP_LDAP_URL is set)")
        changed: dict[str, tuple[object, object]] = {}
        with self._db.session() as session:
            path = lookup_path(session, account_id)
            row = session.get(Account, account_id)
            assert row is not None  # lookup_path found it
            if change.mails is not None and list(row.contacts) != change.mails:
                changed["contacts"] = (list(row.contacts), change.mails)
                row.contacts = change.mails
                session.add(row)
            override = session.exec(select(ThresholdOverride).where(
                ThresholdOverride.scope == "account", ThresholdOverride.scope_id == account_id,
                ThresholdOverride.name == QUOTA)).first()
            before = None if override is None else override.value
            if change.clear_quota_percent and override is not None:
                session.delete(override)
                changed[QUOTA] = (before, None)
            elif change.quota_percent is not None:
                new = _percent_text(change.quota_percent)
                if before != new:
                    set_override(session, "account", account_id, QUOTA, new)
                    changed[QUOTA] = (before, new)
        _audit(actor, path, "database", changed)
        return self.read(account_id)

    # --- the directory ------------------------------------------------------------------------

    def _entry(self, path: AccountPath) -> Entry | None:
        assert self._reader is not None
        r = self._rules
        found = self._reader.search(
            r.account_base, r.account_query(path),
            [r.warning_on, r.medium, r.owner, r.mail, self._quota_attribute], size_limit=2)
        return found[0] if found else None

    def _from_directory(self, path: AccountPath, book: PolicyBook,
                        entry: Entry | None) -> Preferences:
        attrs: Attributes = entry.attributes if entry is not None else {}
        r = self._rules
        flag = values(attrs, r.warning_on)
        media = values(attrs, r.medium)
        own = _directory_percent(values(attrs, self._quota_attribute))
        if own is not None:
            book.directory.setdefault(path.account_id, {})[QUOTA] = own
        value, source = book.resolve(QUOTA, _tenant(path))
        recipients = addresses_from(r, attrs, self._owner_mails) if entry is not None else []
        return Preferences(
            account_id=path.account_id, source="directory", writable=self._writer is not None,
            entry_dn=entry.dn if entry is not None else None,
            warning_on=None if not flag else flag[0].strip().upper() == "TRUE",
            medium=media[0] if media else None, mails=tuple(values(attrs, r.mail)),
            recipients=tuple(recipients), quota_percent=own,
            quota_percent_in_force=float(value), quota_percent_from=source)

    def _owner_mails(self, uid: str) -> list[str]:
        assert self._reader is not None
        return person_mails(self._reader, self._rules, uid)

    def _change_directory(self, account_id: str, change: Change, actor: str) -> Preferences:
        if self._writer is None:
            raise PreferencesReadOnly(
                "the LDAP directory keeps these preferences and Backstop has no write access to "
                "it (set BACKSTOP_LDAP_WRITE_BIND_DN and BACKSTOP_LDAP_WRITE_BIND_PASSWORD)")
        with self._db.session() as session:
            path = lookup_path(session, account_id)  # no policy book: read() below loads it
        entry = self._entry(path)
        if entry is None:
            raise AccountEntryMissing(
                f"the LDAP directory has no entry for account {path.account!r}")
        r, attrs = self._rules, entry.attributes
        wanted: dict[str, list[str]] = {}
        if change.warning_on is not None:
            wanted[r.warning_on] = ["TRUE" if change.warning_on else "FALSE"]
        if change.medium is not None:
            wanted[r.medium] = [change.medium]
        if change.mails is not None:
            wanted[r.mail] = list(change.mails)
        if change.clear_quota_percent:
            wanted[self._quota_attribute] = []
        elif change.quota_percent is not None:
            wanted[self._quota_attribute] = [_percent_text(change.quota_percent)]
        # Only what differs: an unchanged attribute is not rewritten (nor its history touched).
        changes = {name: new for name, new in wanted.items() if values(attrs, name) != new}
        if changes:
            self._writer.replace(entry.dn, changes)
        _audit(actor, path, "directory",
               {name: (values(attrs, name), new) for name, new in changes.items()})
        return self.read(account_id)


# --- values ----------------------------------------------------------------------------------


def _checked(change: Change) -> Change:
    if change.is_empty():
        return change
    if change.medium is not None and not MEDIUM.fullmatch(change.medium):
        raise InvalidPreference(f"medium {change.medium!r} must be one word, e.g. mail")
    mails = None
    if change.mails is not None:
        mails = []
        for mail in change.mails:
            try:
                address(mail.strip())
            except ValueError as exc:
                raise InvalidPreference(str(exc)) from exc
            if mail.strip() not in mails:
                mails.append(mail.strip())
    if change.quota_percent is not None:
        try:
            parse_value(QUOTA, str(change.quota_percent))
        except PolicyError as exc:
            raise InvalidPreference(str(exc)) from exc
        if change.clear_quota_percent:
            raise InvalidPreference("give a quota threshold or clear it, not both")
    return Change(change.warning_on, change.medium, mails, change.quota_percent,
                  change.clear_quota_percent)


def _percent_text(value: float) -> str:
    return f"{value:g}"


def _directory_percent(raw: list[str]) -> float | None:
    """The directory's threshold, or None when it holds none or one that is no percent."""
    if not raw:
        return None
    try:
        return float(parse_value(QUOTA, raw[0].strip()))
    except PolicyError:
        return None


def _tenant(path: AccountPath) -> Tenant:
    return Tenant(reseller=path.reseller_id, customer=path.customer_id, account=path.account_id)


def _audit(actor: str, path: AccountPath, store: str,
           changed: dict[str, tuple[object, object]]) -> None:
    if not changed:
        return
    audit.info(
        "preferences of account %s changed by %s: %s", path.account_id, actor,
        "; ".join(f"{name} {before!r} -> {after!r}" for name, (before, after) in changed.items()),
        extra={"actor": actor, "account_id": path.account_id, "store": store,
               "changes": {name: {"from": before, "to": after}
                           for name, (before, after) in changed.items()}})
