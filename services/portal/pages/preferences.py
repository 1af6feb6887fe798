"""``/accounts/<id>/preferences``: self-care. An account's notification preferences — warning
on/off, medium, mail addresses, quota threshold — shown and changed by its customer's users and
its reseller's staff, in the LDAP entry when the directory is the source (written with
``BACKSTOP_LDAP_WRITE_BIND_DN``), else in the database (services/portal/actions/self_care.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.notifier.recipients.preferences import (
    AccountPreferences,
    Change,
    PreferencesError,
)
from services.portal.access import current_viewer, editor
from services.portal.actions import self_care
from services.portal.errors import NotFound, Unavailable
from services.portal.rendering import page
from services.portal.rights import Editor, Forbidden, Invalid
from services.portal.state import PortalState, database, portal
from services.portal.users import Viewer
from shared.db import Database
from shared.directory import DirectoryRefused, DirectoryUnavailable
from shared.tenancy import AccountNotFound

router = APIRouter()
T = TypeVar("T")


def store_of(state: PortalState) -> AccountPreferences:
    """One preferences store (and LDAP pools) per app, made on first use."""
    found = state.extras.get("preferences")
    if not isinstance(found, AccountPreferences):
        found = state.extras["preferences"] = AccountPreferences(state.db, state.settings)
    return found


def close_store(state: PortalState) -> None:
    """Close the store's directory connections (when the portal stops)."""
    found = state.extras.pop("preferences", None)
    if isinstance(found, AccountPreferences):
        found.close()


@contextmanager
def _answered() -> Iterator[None]:
    """The store's and the directory's refusals as the portal's errors."""
    try:
        yield
    except AccountNotFound as exc:
        raise NotFound() from exc
    except PreferencesError as exc:
        raise Invalid(str(exc)) from exc
    except DirectoryUnavailable as exc:
        raise Unavailable("The directory does not answer; try again in a minute.") from exc
    except DirectoryRefused as exc:
        raise Forbidden(f"The directory refused the change: {exc}") from exc


async def _run(db: Database, work: Callable[[Session], T]) -> T:
    with _answered():
        return await db.run(work)


@router.get("/accounts/{account_id}/preferences", response_class=HTMLResponse)
async def preferences_page(request: Request, account_id: str = Path(..., max_length=32),
                           viewer: Viewer = Depends(current_viewer),
                           db: Database = Depends(database)) -> Response:
    store = store_of(portal(request))
    prefs = await _run(db, lambda s: self_care.preferences(s, viewer.scope, store, account_id))
    return await page(request, "preferences.html", {
        "title": "Notification preferences", "prefs": prefs, "account_id": account_id,
        "may_edit": prefs.writable and not viewer.read_only})


@router.post("/accounts/{account_id}/preferences")
async def change_preferences(request: Request, account_id: str = Path(..., max_length=32),
                             warning_on: str = Form("", max_length=8),
                             medium: str = Form("", max_length=64),
                             mails: str = Form("", max_length=5000),
                             quota_percent: str = Form("", max_length=20),
                             viewer: Viewer = Depends(editor),
                             db: Database = Depends(database)) -> Response:
    store = store_of(portal(request))
    directory = store.source == "directory"
    try:
        percent = float(quota_percent) if quota_percent.strip() else None
    except ValueError as exc:
        raise Invalid("The quota threshold is a percentage, e.g. 85.") from exc
    change = Change(
        warning_on={"on": True, "off": False}.get(warning_on) if directory else None,
        medium=(medium.strip() or None) if directory else None,
        mails=[m.strip() for m in mails.replace(",", "\n").splitlines() if m.strip()],
        quota_percent=percent, clear_quota_percent=percent is None)
    await _run(db, lambda s: self_care.change_preferences(s, Editor.of(viewer), store,
                                                          account_id, change))
    return RedirectResponse(f"/accounts/{account_id}/preferences?done=saved", status_code=303)
