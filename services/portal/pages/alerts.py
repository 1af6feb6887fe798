"""``/alerts/<id or fingerprint>``: the page every alert e-mail and webhook links to."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.portal.access import current_viewer
from services.portal.errors import NotFound
from services.portal.queries.alert_detail import alert_detail
from services.portal.rendering import page
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database

router = APIRouter()


@router.get("/alerts/{ref}", response_class=HTMLResponse)
async def alert_page(request: Request, ref: str = Path(..., max_length=64),
                     viewer: Viewer = Depends(current_viewer),
                     db: Database = Depends(database)) -> Response:
    detail = await db.run(lambda s: alert_detail(s, viewer.scope, ref))
    if detail is None:
        raise NotFound()
    return await page(request, "alert.html", {"alert": detail, "title": detail.summary})
