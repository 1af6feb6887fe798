"""``/usage``: stored bytes per customer over time (a trend each) and the monthly table per
account an MSP bills from; ``/usage.csv`` the same table as CSV. Scoped in the queries."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from services.portal.access import current_viewer
from services.portal.queries import billing
from services.portal.queries.usage import customer_usage, monthly_usage
from services.portal.rendering import page
from services.portal.rights import Invalid
from services.portal.sparklines import sparkline
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database
from shared.events import utcnow

router = APIRouter()

MONTH = re.compile(r"(\d{4})-(\d{2})")
MAX_MONTHS = 24


def months(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """The first day of ``first``'s month and the last of ``last``'s (default: this month)."""
    def parse(text: str | None, default: date) -> date:
        if not text:
            return default.replace(day=1)
        found = MONTH.fullmatch(text.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
            raise Invalid(f"{text!r} is not a month (YYYY-MM).")
        return date(int(found.group(1)), int(found.group(2)), 1)

    start, end = parse(first, today), parse(last, today)
    if end < start:
        raise Invalid("The first month comes after the last.")
    if (end.year - start.year) * 12 + end.month - start.month >= MAX_MONTHS:
        raise Invalid(f"Ask for at most {MAX_MONTHS} months at once.")
    return start, end.replace(day=monthrange(end.year, end.month)[1])


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(request: Request, first: str | None = Query(None, alias="from", max_length=7),
                     last: str | None = Query(None, alias="to", max_length=7),
                     viewer: Viewer = Depends(current_viewer),
                     db: Database = Depends(database)) -> Response:
    since, until = months(first, last, utcnow().date())

    def read(session: Session) -> dict[str, object]:
        return {"lines": monthly_usage(session, viewer.scope, since, until),
                "points": customer_usage(session, viewer.scope, since, until)}

    found = await db.run(read)
    trends: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for point in found["points"]:  # type: ignore[attr-defined]
        trends.setdefault(point.customer_id, []).append(point.bytes_used)
        names[point.customer_id] = point.customer_name
    charts = [(names[c], values[-1], sparkline(values, label=f"Storage of {names[c]} per day"))
              for c, values in trends.items()]
    return await page(request, "usage.html", {
        "title": "Usage and billing", "lines": found["lines"], "charts": charts,
        "first": since.strftime("%Y-%m"), "last": until.strftime("%Y-%m")})


@router.get("/usage.csv")
async def usage_csv(first: str | None = Query(None, alias="from", max_length=7),
                    last: str | None = Query(None, alias="to", max_length=7),
                    viewer: Viewer = Depends(current_viewer),
                    db: Database = Depends(database)) -> Response:
    since, until = months(first, last, utcnow().date())
    lines = await db.run(lambda s: monthly_usage(s, viewer.scope, since, until))
    name = f"backstop-usage-{since:%Y-%m}-to-{until:%Y-%m}.csv"
    return Response(billing.as_csv(lines), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
