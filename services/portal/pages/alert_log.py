"""``/alerts`` (open alerts first, then the alert log, with silence and un-silence) and
``/notifications`` (every notification sent: when, to whom, which channel, delivered or not,
how many tries). Each alert links to its own page, ``/alerts/<fingerprint>``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.portal.access import current_viewer, editor
from services.portal.actions import silencing
from services.portal.queries import alert_log
from services.portal.queries.alert_log import AlertFilters, SentFilters
from services.portal.rendering import page
from services.portal.rights import Editor, Invalid
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database
from shared.events import utcnow

router = APIRouter()

PAGE = 50
# What the silence form offers, in hours.
SILENCE_HOURS = (1, 4, 12, 24, 72, 168)


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request,
    state: str | None = Query(None, max_length=16), kind: str | None = Query(None, max_length=32),
    q: str = Query("", max_length=200), offset: int = Query(0, ge=0),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    filters = AlertFilters(state=_choice(state, alert_log.ALERT_STATES), kind=kind or None,
                           text=q.strip() or None)

    def read(session: Session) -> dict[str, object]:
        return {
            "log": alert_log.alerts(session, viewer.scope, filters, limit=PAGE, offset=offset),
            "open": alert_log.open_alerts(session, viewer.scope, limit=1).total,
            "silences": alert_log.active_silences(session, viewer.scope, utcnow()),
        }

    found = await db.run(read)
    return await page(request, "alert_log.html", {
        "title": "Alerts", "filters": filters, "q": q, "offset": offset, "page_size": PAGE,
        "silence_hours": SILENCE_HOURS, **found})


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(
    request: Request,
    status: str | None = Query(None, max_length=16),
    channel: str | None = Query(None, max_length=16),
    offset: int = Query(0, ge=0),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    filters = SentFilters(status=_choice(status, alert_log.DELIVERY_STATUSES),
                          channel=_choice(channel, alert_log.CHANNELS))
    sent = await db.run(lambda s: alert_log.notifications_sent(s, viewer.scope, filters,
                                                               limit=PAGE, offset=offset))
    return await page(request, "notifications.html", {
        "title": "Notifications sent", "sent": sent, "filters": filters, "offset": offset,
        "page_size": PAGE})


@router.post("/alerts/{fingerprint}/silence")
async def silence(
    fingerprint: str = Path(..., max_length=64),
    hours: float = Form(...), level: str = Form("account"), reason: str = Form("", max_length=500),
    viewer: Viewer = Depends(editor), db: Database = Depends(database),
) -> Response:
    if level not in silencing.LEVELS:
        raise Invalid("Silence the alert's account or its customer.")
    if not 0 < hours <= silencing.MAX_SILENCE.total_seconds() / 3600:  # NaN: refused too
        raise Invalid(f"A silence lasts more than 0 and at most {silencing.MAX_SILENCE.days} "
                      "days.")
    await db.run(lambda s: silencing.silence_alert(
        s, Editor.of(viewer), fingerprint, duration=timedelta(hours=hours), reason=reason,
        now=utcnow(), level=level))  # type: ignore[arg-type]
    return RedirectResponse("/alerts?done=silenced", status_code=303)


@router.post("/silences/{silence_id}/end")
async def end_silence(
    silence_id: str = Path(..., max_length=32),
    viewer: Viewer = Depends(editor), db: Database = Depends(database),
) -> Response:
    await db.run(lambda s: silencing.end_silence(s, Editor.of(viewer), silence_id, utcnow()))
    return RedirectResponse("/alerts?done=unsilenced", status_code=303)
