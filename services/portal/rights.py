"""Who may change what in the portal.

A user's role follows from their scope: everything (operator), one reseller (reseller staff) or
one customer (customer user); any of them may be read-only. An action names the lowest role
allowed to do it at the target's level (a reseller's branding needs reseller staff; an account's
threshold a customer user of that account) and the target's tenant; a target outside the user's
scope is *not found*, exactly as on the read side, never "forbidden".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from shared.scopes import Scope


class Role(IntEnum):
    """Ordered: a higher role may do what a lower one may."""

    CUSTOMER = 1
    RESELLER = 2
    OPERATOR = 3


def role_of(scope: Scope) -> Role:
    if scope.is_everything:
        return Role.OPERATOR
    return Role.RESELLER if scope.customer_id is None else Role.CUSTOMER


class NotFound(LookupError):
    """No such thing in the user's scope (a 404: another tenant's id reads as unknown)."""


class Forbidden(PermissionError):
    """The thing is visible to the user, but their role or read-only flag forbids the change
    (a 403)."""


class Invalid(ValueError):
    """The change itself is refused: a bad value, URL or address (a 422 with the reason)."""


@dataclass(frozen=True)
class Editor:
    """The user making a change: their scope, read-only flag, and a name for the audit log."""

    scope: Scope
    read_only: bool
    who: str

    @property
    def role(self) -> Role:
        return role_of(self.scope)

    def require(self, lowest: Role, reseller_id: str, customer_id: str | None = None) -> None:
        """Refuse unless the target (a reseller's, or one customer's) is in scope
        (:class:`NotFound`) and the user may change it (:class:`Forbidden`)."""
        if customer_id is None:
            # A reseller-wide target is visible to the reseller's staff and operators only.
            visible = self.scope.is_everything or (
                self.scope.customer_id is None and self.scope.reseller_id == reseller_id)
        else:
            visible = self.scope.admits(reseller_id, customer_id)
        if not visible:
            raise NotFound("not found")
        if self.read_only:
            raise Forbidden(f"{self.who} has read-only access")
        if self.role < lowest:
            raise Forbidden(f"changing this needs the {lowest.name.lower()} role or higher")
