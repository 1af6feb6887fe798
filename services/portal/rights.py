"""Who may change what in the portal.

A user's role follows from their scope: everything (operator), one reseller (reseller staff) or
one customer (customer user); any of them may be read-only. An action names the lowest role
allowed to do it at the target's level (a reseller's branding needs reseller staff; an account's
threshold a customer user of that account) and the target's tenant; a target outside the user's
scope is *not found*, exactly as on the read side, never "forbidden". The errors are the
portal's (services/portal/errors.py), so pages and the API answer them with their status.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.portal.errors import NotFound, PortalError, ReadOnly
from services.portal.users import Role, Viewer
from shared.scopes import Scope

__all__ = ["Editor", "Forbidden", "Invalid", "NotFound", "ReadOnly", "Role", "role_of"]


# A higher rank may do what a lower one may.
RANK = {Role.customer: 1, Role.reseller: 2, Role.operator: 3}


def role_of(scope: Scope) -> Role:
    if scope.is_everything:
        return Role.operator
    return Role.reseller if scope.customer_id is None else Role.customer


class Forbidden(PortalError):
    """The thing is visible to the user, but their role does not let them change it."""

    status = 403
    title = "Not allowed"


class Invalid(PortalError):
    """The change itself is refused: a bad value, URL or address (shown with the reason)."""

    status = 422
    title = "Not saved"


@dataclass(frozen=True)
class Editor:
    """The user making a change: their scope, read-only flag, and a name for the audit log."""

    scope: Scope
    read_only: bool
    who: str

    @classmethod
    def of(cls, viewer: Viewer) -> Editor:
        return cls(viewer.scope, viewer.read_only, viewer.email)

    @property
    def actor(self) -> str:
        """Who made a change, as audit lines name it."""
        return f"portal:{self.who}"

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
            raise NotFound()
        if self.read_only:
            raise ReadOnly()
        if RANK[self.role] < RANK[lowest]:
            raise Forbidden(f"Changing this needs the {lowest.value} role or higher.")
