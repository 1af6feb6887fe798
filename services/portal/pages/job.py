"""``/jobs/<id>``: one job — state, schedule and next due times, thresholds in force and where
each comes from, open alerts, duration and size charts, and its runs (paged, newest first)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlmodel import Session

from services.portal.access import current_viewer
from services.portal.charts import Point, line_chart
from services.portal.errors import NotFound, PortalError
from services.portal.queries.jobs import JobDetail, job_detail
from services.portal.queries.runs import InvalidCursor, RunPage, runs_of_job
from services.portal.rendering import duration, page, size
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database
from shared.events import utcnow

router = APIRouter()
PAGE_SIZE = 25
CHART_RUNS = 100  # the newest runs drawn in the charts


@dataclass(frozen=True)
class JobPage:
    detail: JobDetail
    runs: RunPage
    durations: Markup
    sizes: Markup


def _load(session: Session, viewer: Viewer, job_id: str, before: str | None,
          offset: int) -> JobPage | None:
    detail = job_detail(session, viewer.scope, job_id, utcnow())
    if detail is None:
        return None
    runs = runs_of_job(session, viewer.scope, job_id, limit=PAGE_SIZE, offset=offset,
                       before=before)
    recent = runs_of_job(session, viewer.scope, job_id, limit=CHART_RUNS)
    if runs is None or recent is None:
        return None
    finished = [r for r in reversed(recent.items) if r.status != "started"]
    durations = [Point(r.at, r.duration_seconds, r.status == "failure")
                 for r in finished if r.duration_seconds is not None]
    sizes = [Point(r.at, float(r.bytes_transferred), r.status == "failure")
             for r in finished if r.bytes_transferred is not None]
    return JobPage(
        detail, runs,
        line_chart(durations, title="Duration of the last runs", unit=duration),
        line_chart(sizes, title="Bytes sent by the last runs", unit=size, colour="#5b3b8c"))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    request: Request, job_id: str = Path(..., max_length=32),
    before: str | None = Query(None, max_length=100, description="Runs older than this."),
    offset: int = Query(0, ge=0, le=10_000_000),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    try:
        found = await db.run(lambda s: _load(s, viewer, job_id, before, offset))
    except InvalidCursor as exc:
        raise PortalError(f"not a position in the run list: {exc}") from exc
    if found is None:
        raise NotFound()
    return await page(request, "job.html", {"title": found.detail.job.job_name, "job": found})
