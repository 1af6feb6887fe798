"""``/quotas`` (every account in scope: storage, quota, threshold in force) and
``/accounts/<id>/settings`` (an account's or one of its jobs' thresholds and tolerances in
force, where each comes from, forms to set and unset them, the customer's reminder interval,
and the usage trend drawn as SVG). Who may edit follows the role (services/portal/actions/
tuning.py); read-only users see no forms and are refused if they post."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.portal.access import current_viewer, editor
from services.portal.actions import tuning
from services.portal.errors import NotFound
from services.portal.queries import quotas
from services.portal.queries.usage import account_usage
from services.portal.rendering import page
from services.portal.rights import RANK, Editor, Invalid
from services.portal.sparklines import sparkline
from services.portal.state import database, portal
from services.portal.users import Role, Viewer
from shared.db import Database
from shared.events import utcnow

router = APIRouter()

PAGE = 100
TREND_DAYS = 90
JOB = Query(None, max_length=128)


@router.get("/quotas", response_class=HTMLResponse)
async def quotas_page(request: Request, q: str = Query("", max_length=200),
                      offset: int = Query(0, ge=0), viewer: Viewer = Depends(current_viewer),
                      db: Database = Depends(database)) -> Response:
    found = await db.run(lambda s: quotas.accounts(s, viewer.scope, text=q.strip(),
                                                   limit=PAGE, offset=offset))
    return await page(request, "quotas.html", {"title": "Quotas and thresholds",
                                               "accounts": found, "q": q, "offset": offset,
                                               "page_size": PAGE})


@router.get("/accounts/{account_id}/settings", response_class=HTMLResponse)
async def account_settings(request: Request, account_id: str = Path(..., max_length=32),
                           job: str | None = JOB, viewer: Viewer = Depends(current_viewer),
                           db: Database = Depends(database)) -> Response:
    today = utcnow().date()

    def read(session: Session) -> dict[str, object]:
        row = quotas.account(session, viewer.scope, account_id)
        if row is None:
            raise NotFound()
        jobs = quotas.job_names(session, viewer.scope, account_id)
        if job is not None and job not in jobs:
            raise NotFound()
        points = account_usage(session, viewer.scope, today - timedelta(days=TREND_DAYS - 1),
                               today, account_id=account_id)
        return {"account": row, "jobs": jobs,
                "settings": tuning.in_force(session, viewer.scope, account_id, job,
                                            portal(request).settings),
                "repeat": tuning.repeat_interval(session, viewer.scope, row.customer_id),
                "points": points}

    found = await db.run(read)
    points = found["points"]
    assert isinstance(points, list)
    account = found["account"]
    assert isinstance(account, quotas.AccountRow)
    trend = sparkline([p.bytes_used for p in points], limit=account.quota_bytes,
                      label=f"Storage of {account.account} over the last {TREND_DAYS} days"
                      + (f", latest {points[-1].bytes_used} bytes" if points else ": no reports"))
    rank = RANK[viewer.role]
    return await page(request, "account_settings.html", {
        "title": f"Thresholds of {account.account}", "job": job, "trend": trend,
        "trend_days": TREND_DAYS, "first_day": points[0].day if points else None,
        "may_edit": not viewer.read_only,
        "may_edit_customer": not viewer.read_only and rank >= RANK[Role.reseller],
        "setting_names": tuning.SETTINGS, **found})


def _back(account_id: str, job: str | None, done: str) -> RedirectResponse:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("job", job), ("done", done)) if v})
    return RedirectResponse(f"/accounts/{account_id}/settings?{query}", status_code=303)


@router.post("/accounts/{account_id}/thresholds")
async def set_threshold(account_id: str = Path(..., max_length=32),
                        name: str = Form(..., max_length=64),
                        value: str = Form(..., max_length=200),
                        job: str | None = Form(None, max_length=128),
                        viewer: Viewer = Depends(editor),
                        db: Database = Depends(database)) -> Response:
    def work(session: Session) -> None:
        target = tuning.account_target(session, viewer.scope, account_id, job or None)
        tuning.set_threshold(session, Editor.of(viewer), target, name, value)

    await db.run(work)
    return _back(account_id, job, "saved")


@router.post("/accounts/{account_id}/thresholds/unset")
async def unset_threshold(account_id: str = Path(..., max_length=32),
                          name: str = Form(..., max_length=64),
                          job: str | None = Form(None, max_length=128),
                          viewer: Viewer = Depends(editor),
                          db: Database = Depends(database)) -> Response:
    def work(session: Session) -> None:
        target = tuning.account_target(session, viewer.scope, account_id, job or None)
        tuning.unset_threshold(session, Editor.of(viewer), target, name)

    await db.run(work)
    return _back(account_id, job, "unset")


@router.post("/accounts/{account_id}/repeat")
async def set_repeat(account_id: str = Path(..., max_length=32),
                     hours: str = Form("", max_length=20), viewer: Viewer = Depends(editor),
                     db: Database = Depends(database)) -> Response:
    """The reminder interval of the account's customer, in hours (empty: inherit)."""
    try:
        seconds = None if not hours.strip() else float(hours) * 3600
    except ValueError as exc:
        raise Invalid("The reminder interval is a number of hours (0: no reminders).") from exc

    def work(session: Session) -> None:
        account = tuning.account_in_scope(session, viewer.scope, account_id)
        tuning.set_repeat(session, Editor.of(viewer), account.customer_id, seconds)

    await db.run(work)
    return _back(account_id, None, "saved")


@router.post("/accounts/{account_id}/quota")
async def set_quota(account_id: str = Path(..., max_length=32),
                    gigabytes: str = Form("", max_length=30), viewer: Viewer = Depends(editor),
                    db: Database = Depends(database)) -> Response:
    """The account's quota in GB (10^9 bytes, as storage is sold; empty: none)."""
    try:
        amount = float(gigabytes) if gigabytes.strip() else None
    except ValueError as exc:
        raise Invalid("The quota is a number of gigabytes, e.g. 500.") from exc
    if amount is not None and not 0 < amount < 1e12:  # NaN and inf refused too
        raise Invalid("The quota is a positive number of gigabytes.")
    quota = None if amount is None else round(amount * 10**9)
    await db.run(lambda s: tuning.set_quota(s, Editor.of(viewer), account_id, quota))
    return _back(account_id, None, "saved")
