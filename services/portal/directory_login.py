"""Logging in through the LDAP directory the notifier uses: find the user's entry by the address
typed (``BACKSTOP_PORTAL_LDAP_USER_FILTER``, the value escaped), then bind as that entry with the
password typed. The bind is the check: the portal never sees the directory's password hashes.

An entry may grant a role through ``BACKSTOP_PORTAL_LDAP_ROLE_ATTRIBUTE`` (see
:func:`parse_role`); without one, only users added with ``backstop users add`` may log in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from services.portal.users import Role
from shared.config import PortalSettings

log = logging.getLogger(__name__)


class DirectoryDown(RuntimeError):
    """No LDAP server answered: the login cannot be checked now (not a wrong password)."""


@dataclass(frozen=True)
class Grant:
    role: Role
    reseller_id: str | None = None
    customer_id: str | None = None
    read_only: bool = False


def parse_role(value: str) -> Grant | None:
    """``operator``, ``reseller:<reseller id>``, ``customer:<reseller id>:<customer id>``, each
    optionally followed by ``:read-only``; None for anything else."""
    parts = [p.strip() for p in value.strip().split(":")]
    read_only = parts[-1].lower() == "read-only"
    if read_only:
        parts = parts[:-1]
    if parts == ["operator"]:
        return Grant(Role.operator, read_only=read_only)
    if len(parts) == 2 and parts[0] == "reseller" and parts[1]:
        return Grant(Role.reseller, parts[1], read_only=read_only)
    if len(parts) == 3 and parts[0] == "customer" and parts[1] and parts[2]:
        return Grant(Role.customer, parts[1], parts[2], read_only=read_only)
    return None


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    grant: Grant | None


class DirectoryLogin:
    def __init__(self, settings: PortalSettings) -> None:
        self._urls = [u.strip() for u in settings.portal_ldap_url.split(",") if u.strip()]
        self._s = settings

    def _server(self, url: str) -> ldap3.Server:
        return ldap3.Server(url, connect_timeout=self._s.portal_ldap_timeout,
                            get_info=ldap3.NONE)

    def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """The user's entry when ``password`` binds as it; None when not (no such entry, wrong
        password). Blocking: run it in a thread."""
        if not password:
            return None  # an empty password would be an unauthenticated bind: never a login
        last: Exception | None = None
        for url in self._urls:
            try:
                return self._authenticate_on(url, login, password)
            except LDAPException as exc:
                last = exc
        raise DirectoryDown(f"LDAP unavailable: {last}")

    def _authenticate_on(self, url: str, login: str, password: str) -> DirectoryUser | None:
        s = self._s
        timeout = max(1, math.ceil(s.portal_ldap_timeout))
        attribute = s.portal_ldap_role_attribute
        with ldap3.Connection(self._server(url), user=s.portal_ldap_bind_dn or None,
                              password=s.portal_ldap_bind_password or None, auto_bind=True,
                              read_only=True, receive_timeout=timeout,
                              raise_exceptions=False) as conn:
            query = s.portal_ldap_user_filter.format(login=escape_filter_chars(login))
            conn.search(s.portal_ldap_user_base, query, ldap3.SUBTREE,
                        attributes=[attribute] if attribute else [], size_limit=2)
            entries = [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]
        if len(entries) != 1:
            return None  # nobody, or an ambiguous address: no login either way
        dn = entries[0]["dn"]
        user = ldap3.Connection(self._server(url), user=dn, password=password,
                                read_only=True, receive_timeout=timeout,
                                raise_exceptions=False)
        try:
            if not user.bind():
                return None
        finally:
            user.unbind()
        grant = None
        if attribute:
            for key, values in entries[0].get("attributes", {}).items():
                if key.lower() == attribute.lower():
                    found = values if isinstance(values, list) else [values]
                    grant = next((g for v in found if (g := parse_role(str(v)))), None)
        return DirectoryUser(dn, grant)
