"""Self-care: an account's notification preferences (warning on/off, medium, mail addresses,
quota threshold) as its customer's users and their reseller's staff see and change them.

The store is the notifier's :class:`AccountPreferences` (the LDAP entry when the directory is
the source, written with the write bind; the database otherwise). This module adds what the
portal owes: the account must be in the user's scope (checked in the query, else not found) and
the user must be allowed to change it (customer users and up, never read-only).
Blocking (LDAP, the database): call it from a thread (``Database.run`` does).
"""

from __future__ import annotations

from sqlmodel import Session

from services.notifier.recipients.preferences import AccountPreferences, Change, Preferences
from services.portal.actions.tuning import account_in_scope
from services.portal.rights import Editor, Role
from shared.scopes import Scope


def preferences(session: Session, scope: Scope, store: AccountPreferences,
                account_id: str) -> Preferences:
    account_in_scope(session, scope, account_id)
    return store.read(account_id)


def change_preferences(session: Session, editor: Editor, store: AccountPreferences,
                       account_id: str, change: Change) -> Preferences:
    """Apply ``change``; raises the store's ``PreferencesError``s (4xx) and directory errors."""
    account = account_in_scope(session, editor.scope, account_id)
    editor.require(Role.customer, account.reseller_id, account.customer_id)
    return store.change(account_id, change, actor=editor.actor)
