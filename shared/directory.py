"""The LDAP directory as Backstop uses it: pooled connections, searches (one entry, or every
account entry page by page), attribute-level changes, and how an account entry is found.

The notifier (recipients), the evaluator (quota thresholds) and the self-care preferences all go
through here. Every value put into a filter is escaped (RFC 4515). A server that cannot answer
raises :class:`DirectoryUnavailable`; callers decide whether that postpones (the notifier), keeps
the last known values (the evaluator) or is shown to the user (preferences).
"""

from __future__ import annotations

import logging
import math
import queue
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPCommunicationError, LDAPException
from ldap3.utils.conv import escape_filter_chars

from shared.config import DirectorySettings
from shared.tenancy import AccountPath

log = logging.getLogger(__name__)

Attributes = Mapping[str, list[Any]]
T = TypeVar("T")

# Result codes a search may end with and still have answered: success, size limit exceeded
# (the entries up to the limit are there), no such base (nothing there).
_SEARCH_ANSWERED = (0, 4, 32)
PAGE_SIZE = 500  # entries per page of a whole-directory search (the paged results control)


class DirectoryError(Exception):
    """Something about the directory went wrong."""


class DirectoryUnavailable(DirectoryError):
    """The directory cannot answer now (down, unreachable, timed out); try again later."""


class DirectoryRefused(DirectoryError):
    """The directory answered and said no (no write access, a value its schema refuses, no such
    entry): trying again will not help."""


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: Attributes


def values(entry: Attributes, name: str) -> list[str]:
    """The values of attribute ``name`` (names are case-insensitive in LDAP), as text."""
    for key, found in entry.items():
        if key.lower() == name.lower():
            return [v.decode() if isinstance(v, bytes) else str(v) for v in found]
    return []


# --- finding account entries -----------------------------------------------------------------

PLACEHOLDERS = ("account", "account_id", "customer", "reseller")
_ASSERTION = re.compile(r"\(([A-Za-z][A-Za-z0-9;.-]*)=([^()]*)\)")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ESCAPED = re.compile(r"\\([0-9a-fA-F]{2})")

Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AccountEntries:
    """Where account entries are and the filter finding one (``{account}``, ``{account_id}``,
    ``{customer}``, ``{reseller}`` stand for escaped values of the account's path).

    For a search of every account entry at once (the evaluator's sync), the filter's
    placeholders must each sit in an equality or substring assertion ``(attr=…{x}…)`` of an AND:
    the whole-directory filter puts ``*`` in their place, and each entry found is matched back
    to accounts through the values of those attributes.
    """

    base: str
    filter: str
    _assertions: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False,
                                                                 compare=False)
    _placeholders: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found: list[tuple[str, re.Pattern[str]]] = []
        for attribute, value in _ASSERTION.findall(self.filter):
            if _PLACEHOLDER.search(value):
                found.append((attribute, _value_pattern(value)))
        object.__setattr__(self, "_assertions", tuple(found))
        object.__setattr__(self, "_placeholders",
                           tuple(sorted(set(_PLACEHOLDER.findall(self.filter)))))

    def query(self, ref: AccountPath) -> str:
        """The filter finding ``ref``'s entry, its values escaped."""
        e = escape_filter_chars
        return self.filter.format(account=e(ref.account), account_id=e(ref.account_id),
                                  customer=e(ref.customer), reseller=e(ref.reseller))

    def query_all(self) -> str:
        """The filter finding every account entry."""
        return self.filter.format(**dict.fromkeys(PLACEHOLDERS, "*"))

    @property
    def key_attributes(self) -> list[str]:
        """The attributes an entry must be read with for :meth:`key_of_entry`."""
        return sorted({attribute for attribute, _ in self._assertions})

    @property
    def placeholders(self) -> list[str]:
        return list(self._placeholders)

    def key_of(self, ref: AccountPath) -> Key:
        return tuple((p, str(getattr(ref, p)).lower()) for p in self._placeholders)

    def key_of_entry(self, entry: Attributes) -> Key | None:
        """The account key an entry answers to, or None when its attributes do not say."""
        got: dict[str, str] = {}
        for attribute, pattern in self._assertions:
            for value in values(entry, attribute):
                match = pattern.fullmatch(value)
                if match:
                    got.update({k: v.lower() for k, v in match.groupdict().items()})
                    break
            else:
                return None
        if set(got) != set(self._placeholders):
            return None
        return tuple((p, got[p]) for p in self._placeholders)


def _value_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching attribute values the assertion value ``template`` matches,
    capturing each placeholder (``*`` in the template matches anything)."""
    parts: list[str] = []
    seen: set[str] = set()
    for index, piece in enumerate(_PLACEHOLDER.split(template)):
        if index % 2:  # a placeholder's name
            parts.append(f"(?P={piece})" if piece in seen else f"(?P<{piece}>.+?)")
            seen.add(piece)
            continue
        literal = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), piece)
        parts.append(".*".join(re.escape(chunk) for chunk in literal.split("*")))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# --- connections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """How to reach and bind to the directory."""

    urls: tuple[str, ...]
    user: str
    password: str
    timeout: float
    pool_size: int
    read_only: bool = True

    @classmethod
    def reader(cls, s: DirectorySettings) -> Access:
        return cls(_urls(s.ldap_url), s.ldap_bind_dn, s.ldap_bind_password, s.ldap_timeout,
                   s.ldap_pool_size)

    @classmethod
    def writer(cls, s: DirectorySettings) -> Access | None:
        """The write bind, or None when no write credentials are configured."""
        if not s.ldap_write_bind_dn:
            return None
        return cls(_urls(s.ldap_url), s.ldap_write_bind_dn, s.ldap_write_bind_password,
                   s.ldap_timeout, 1, read_only=False)


def _urls(text: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in text.split(",") if u.strip())


class Connections:
    """A few bound connections, reused; one that failed is thrown away, not returned. Blocking
    (ldap3): call from a thread (``asyncio.to_thread``) in services."""

    def __init__(self, access: Access) -> None:
        self._access = access
        self._idle: queue.LifoQueue[ldap3.Connection] = queue.LifoQueue(max(1, access.pool_size))

    def search(self, base: str, query: str, attributes: list[str],
               size_limit: int = 10) -> list[Entry]:
        """The entries under ``base`` matching ``query`` (at most ``size_limit``)."""
        return self._on_connection(lambda conn: _search(conn, base, query, attributes, size_limit))

    def search_all(self, base: str, query: str, attributes: list[str],
                   page_size: int = PAGE_SIZE) -> list[Entry]:
        """Every entry under ``base`` matching ``query``, fetched ``page_size`` at a time (one
        search operation, continued by the paged results control, RFC 2696)."""
        return self._on_connection(lambda conn: _search_paged(conn, base, query, attributes,
                                                              page_size))

    def replace(self, dn: str, changes: Mapping[str, list[str]]) -> None:
        """Replace the values of each attribute in ``changes`` (an empty list removes it), in
        one modify operation; other attributes are left alone."""
        ops = {name: [(ldap3.MODIFY_REPLACE, list(new))] for name, new in changes.items()}
        self._on_connection(lambda conn: _modify(conn, dn, ops))

    def _on_connection(self, work: Callable[[ldap3.Connection], T]) -> T:
        try:
            pooled = self._idle.get_nowait()
        except queue.Empty:
            pooled = None
        if pooled is not None:
            try:
                return self._use(pooled, work)
            except LDAPCommunicationError:
                # A server restart leaves every pooled connection dead while the directory is
                # fine: drop them all and try once on a fresh one before calling it unavailable.
                log.info("pooled LDAP connection was stale; retrying on a fresh one")
                self.close()
        try:
            return self._use(self._fresh(), work)
        except LDAPCommunicationError as exc:
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc

    def _connect(self) -> ldap3.Connection:
        # Each server in turn, as a fresh Server object: ldap3's ServerPool sleeps 10 s between
        # rounds, and a Server remembers a refused address as invalid even after it is back.
        a = self._access
        error: Exception = DirectoryUnavailable("no LDAP server configured")
        for url in a.urls:
            try:
                conn = ldap3.Connection(
                    ldap3.Server(url, connect_timeout=a.timeout, get_info=ldap3.NONE),
                    user=a.user or None, password=a.password or None,
                    # ldap3 packs the timeout into a socket option: whole seconds only.
                    auto_bind=True, read_only=a.read_only,
                    receive_timeout=max(1, math.ceil(a.timeout)), raise_exceptions=False,
                )
            except LDAPException as exc:
                error = exc
                continue
            return conn
        raise error

    def _fresh(self) -> ldap3.Connection:
        try:
            return self._connect()
        except LDAPBindError as exc:
            if not self._access.read_only:  # the write credentials are wrong: say so
                raise DirectoryRefused(f"cannot bind as {self._access.user}: {exc}") from exc
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc
        except LDAPException as exc:
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc

    def _use(self, conn: ldap3.Connection, work: Callable[[ldap3.Connection], T]) -> T:
        """``work`` on ``conn``; it goes back to the pool on success and is thrown away on
        failure. Communication errors propagate as they are, so that a stale pooled connection
        can be told apart; the caller maps them."""
        try:
            result = work(conn)
        except (LDAPCommunicationError, DirectoryError):
            _discard(conn)
            raise
        except LDAPException as exc:
            _discard(conn)
            raise DirectoryUnavailable(f"LDAP unavailable: {exc}") from exc
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            _discard(conn)
        return result

    def close(self) -> None:
        while True:
            try:
                _discard(self._idle.get_nowait())
            except queue.Empty:
                return


def _entries(conn: ldap3.Connection) -> list[Entry]:
    return [Entry(r.get("dn", ""), dict(r["attributes"])) for r in (conn.response or [])
            if r.get("type") == "searchResEntry"]


def _search(conn: ldap3.Connection, base: str, query: str, attributes: list[str],
            size_limit: int) -> list[Entry]:
    ok = conn.search(base, query, ldap3.SUBTREE, attributes=attributes, size_limit=size_limit)
    result = conn.result or {}
    if not ok and result.get("result") not in _SEARCH_ANSWERED:
        raise DirectoryUnavailable(f"LDAP search failed: {result.get('description')}")
    return _entries(conn)


def _search_paged(conn: ldap3.Connection, base: str, query: str, attributes: list[str],
                  page_size: int) -> list[Entry]:
    found: list[Entry] = []
    cookie: bytes | None = None
    while True:
        ok = conn.search(base, query, ldap3.SUBTREE, attributes=attributes,
                         paged_size=page_size, paged_cookie=cookie)
        result = conn.result or {}
        if not ok and result.get("result") not in _SEARCH_ANSWERED:
            raise DirectoryUnavailable(f"LDAP search failed: {result.get('description')}")
        found += _entries(conn)
        control = (result.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return found


def _modify(conn: ldap3.Connection, dn: str, ops: dict[str, Any]) -> None:
    if conn.modify(dn, ops):
        return
    result = conn.result or {}
    code, text = result.get("result"), result.get("description")
    if code in (51, 52, 80):  # busy, unavailable, other
        raise DirectoryUnavailable(f"LDAP modify failed: {code} {text} {result.get('message')}")
    raise DirectoryRefused(f"the directory refused the change of {dn}: {code} {text}"
                           f"{': ' + result['message'] if result.get('message') else ''}")


def _discard(conn: ldap3.Connection) -> None:
    # Unbinding a connection whose socket the server already closed may itself fail.
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass


def configured(settings: DirectorySettings) -> bool:
    """Whether a directory is configured at all (else everything comes from the database)."""
    return bool(_urls(settings.ldap_url))
