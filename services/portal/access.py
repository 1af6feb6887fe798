"""Who is asking: the dependencies every page and API route takes its viewer from.

``viewer: Viewer = Depends(current_viewer)`` gives the logged-in user (its ``scope`` is what
every query filters by); without a valid session the request is redirected to the login page
(pages) or answered 401 (``/api/``). ``Depends(editor)`` also refuses read-only users (403).
The user row is read on every request (by primary key), so a removed user or a changed password
ends the session at once.
"""

from __future__ import annotations

from fastapi import Depends, Request
from sqlmodel import Session

from services.portal import users
from services.portal.errors import LoginRequired, ReadOnly
from services.portal.state import portal
from services.portal.users import Viewer


async def optional_viewer(request: Request) -> Viewer | None:
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    state = portal(request)
    data = state.sessions.read(request)
    if data is None:
        return None

    def work(session: Session) -> Viewer | None:
        row = users.get(session, data.user_id)
        return Viewer.of(row) if row is not None else None

    viewer = await state.db.run(work)
    if viewer is None or viewer.session_epoch != data.epoch:
        return None
    request.state.viewer = viewer
    return viewer


async def current_viewer(request: Request) -> Viewer:
    viewer = await optional_viewer(request)
    if viewer is None:
        raise LoginRequired()
    return viewer


async def editor(viewer: Viewer = Depends(current_viewer)) -> Viewer:
    if viewer.read_only:
        raise ReadOnly()
    return viewer
