"""The JSON read API under ``/api/v1/``: the data behind the pages — accounts, jobs, runs,
alerts (with their history and notifications), notifications sent, usage — filtered by the
caller's scope in every query, so another tenant's id answers 404.

A caller is the logged-in user of a browser session, or a script presenting an API key
(``Authorization: Bearer bsk_…``, made with ``backstop users api-key create``), which acts as the
key's user. Nothing here changes anything. The OpenAPI document is ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from services.portal import api_keys
from services.portal.access import optional_viewer
from services.portal.errors import LoginRequired, NotFound, PortalError
from services.portal.queries import alert_log, quotas
from services.portal.queries.alert_log import (
    AlertEntry,
    AlertFilters,
    AlertHistory,
    SentEntry,
    SentFilters,
)
from services.portal.queries.jobs import JobDetail, job_detail
from services.portal.queries.overview import InvalidFilter, JobRow, OverviewFilter, overview
from services.portal.queries.quotas import AccountRow
from services.portal.queries.runs import InvalidCursor, RunPage, runs_of_job
from services.portal.queries.usage import (
    CustomerUsagePoint,
    MonthlyUsage,
    UsagePoint,
    account_usage,
    customer_usage,
    monthly_usage,
)
from services.portal.state import database, portal
from services.portal.users import Viewer
from shared.db import Database
from shared.events import utcnow

PREFIX = "/api/v1"
router = APIRouter(prefix=PREFIX, tags=["read API"])
MAX_DAYS = 731
T = TypeVar("T")


class BadQuery(PortalError):
    status = 400
    title = "Bad request"


async def api_viewer(request: Request) -> Viewer:
    """The session's user, else the user of a valid API key; 401 otherwise."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        secret = header[7:].strip()
        state = portal(request)

        def work(session: Session) -> Viewer | None:
            user = api_keys.user_of(session, secret)
            return Viewer.of(user) if user is not None else None

        viewer = await state.db.run(work)
        if viewer is None:
            raise LoginRequired()
        request.state.viewer = viewer
        return viewer
    found = await optional_viewer(request)
    if found is None:
        raise LoginRequired()
    return found


VIEWER = Depends(api_viewer)
DB = Depends(database)
LIMIT = Query(50, ge=1, le=500)
OFFSET = Query(0, ge=0)


class Listing(BaseModel, Generic[T]):
    """A page of a listing: ``items`` from ``offset`` on, at most ``limit``, of ``total``."""

    total: int
    offset: int
    limit: int
    items: list[T]


class JobListing(Listing[JobRow]):
    counts: dict[str, int]  # jobs per state, over every filter but the state


@router.get("/accounts", summary="Accounts in scope: storage, quota, quota threshold")
async def list_accounts(q: str = Query("", max_length=200), limit: int = LIMIT,
                        offset: int = OFFSET, viewer: Viewer = VIEWER,
                        db: Database = DB) -> Listing[AccountRow]:
    found = await db.run(lambda s: quotas.accounts(s, viewer.scope, text=q.strip(), limit=limit,
                                                   offset=offset))
    return Listing(total=found.total, offset=offset, limit=limit, items=found.items)


@router.get("/accounts/{account_id}", summary="One account")
async def get_account(account_id: str, viewer: Viewer = VIEWER,
                      db: Database = DB) -> AccountRow:
    found = await db.run(lambda s: quotas.account(s, viewer.scope, account_id))
    if found is None:
        raise NotFound()
    return found


@router.get("/jobs", summary="Jobs in scope with their state, worst first")
async def list_jobs(state: list[str] = Query([]), customer_id: str | None = None,
                    account_id: str | None = None, q: str = Query("", max_length=200),
                    limit: int = LIMIT, offset: int = OFFSET, viewer: Viewer = VIEWER,
                    db: Database = DB) -> JobListing:
    try:
        where = OverviewFilter(states=frozenset(state), customer_id=customer_id,
                               account_id=account_id, text=q, limit=limit, offset=offset)
    except InvalidFilter as exc:
        raise BadQuery(str(exc)) from exc
    found = await db.run(lambda s: overview(s, viewer.scope, utcnow(), where, with_days=False))
    return JobListing(total=found.total, offset=offset, limit=limit, items=found.rows,
                      counts=found.counts)


@router.get("/jobs/{job_id}", summary="One job: schedule, next due, thresholds, open alerts")
async def get_job(job_id: str, viewer: Viewer = VIEWER, db: Database = DB) -> JobDetail:
    found = await db.run(lambda s: job_detail(s, viewer.scope, job_id, utcnow()))
    if found is None:
        raise NotFound()
    return found


@router.get("/jobs/{job_id}/runs", summary="A job's runs, newest first (offset or cursor)")
async def list_runs(job_id: str, before: str | None = Query(None, max_length=200),
                    limit: int = LIMIT, offset: int = OFFSET, viewer: Viewer = VIEWER,
                    db: Database = DB) -> RunPage:
    try:
        found = await db.run(lambda s: runs_of_job(s, viewer.scope, job_id, limit=limit,
                                                   offset=offset, before=before))
    except InvalidCursor as exc:
        raise BadQuery(str(exc)) from exc
    if found is None:
        raise NotFound()
    return found


@router.get("/alerts", summary="Alerts, firing first; filter by state, kind, account, text")
async def list_alerts(state: str | None = Query(None, pattern="^(firing|resolved)$"),
                      kind: str | None = Query(None, max_length=32),
                      account_id: str | None = None, q: str = Query("", max_length=200),
                      limit: int = LIMIT, offset: int = OFFSET, viewer: Viewer = VIEWER,
                      db: Database = DB) -> Listing[AlertEntry]:
    filters = AlertFilters(state=state, kind=kind, account_id=account_id, text=q or None)
    found = await db.run(lambda s: alert_log.alerts(s, viewer.scope, filters, limit=limit,
                                                    offset=offset))
    return Listing(total=found.total, offset=offset, limit=limit, items=found.items)


@router.get("/alerts/{fingerprint}", summary="One alert: transitions, notifications, attempts")
async def get_alert(fingerprint: str, viewer: Viewer = VIEWER,
                    db: Database = DB) -> AlertHistory:
    found = await db.run(lambda s: alert_log.alert_history(s, viewer.scope, fingerprint))
    if found is None:
        raise NotFound()
    return found


@router.get("/notifications", summary="Notifications sent, newest first")
async def list_notifications(
        status: str | None = Query(None, pattern="^(pending|sent|dead)$"),
        channel: str | None = Query(None, pattern="^(email|webhook)$"),
        account_id: str | None = None, limit: int = LIMIT, offset: int = OFFSET,
        viewer: Viewer = VIEWER, db: Database = DB) -> Listing[SentEntry]:
    filters = SentFilters(status=status, channel=channel, account_id=account_id)
    found = await db.run(lambda s: alert_log.notifications_sent(s, viewer.scope, filters,
                                                                limit=limit, offset=offset))
    return Listing(total=found.total, offset=offset, limit=limit, items=found.items)


def _window(since: date | None, until: date | None) -> tuple[date, date]:
    until = until or utcnow().date()
    try:
        since = since or until - timedelta(days=29)
    except OverflowError as exc:
        raise BadQuery("until is too early") from exc
    if since > until or (until - since).days >= MAX_DAYS:
        raise BadQuery(f"since must not be after until, and at most {MAX_DAYS} days apart")
    return since, until


@router.get("/usage/accounts", summary="Each account's storage per day")
async def usage_of_accounts(since: date | None = None, until: date | None = None,
                            customer_id: str | None = None, account_id: str | None = None,
                            viewer: Viewer = VIEWER, db: Database = DB) -> list[UsagePoint]:
    first, last = _window(since, until)
    return await db.run(lambda s: account_usage(s, viewer.scope, first, last,
                                                customer_id=customer_id, account_id=account_id))


@router.get("/usage/customers", summary="Each customer's storage per day")
async def usage_of_customers(since: date | None = None, until: date | None = None,
                             viewer: Viewer = VIEWER,
                             db: Database = DB) -> list[CustomerUsagePoint]:
    first, last = _window(since, until)
    return await db.run(lambda s: customer_usage(s, viewer.scope, first, last))


@router.get("/usage/monthly", summary="Per account and month: days, average, peak, last, quota")
async def usage_monthly(since: date | None = None, until: date | None = None,
                        customer_id: str | None = None, viewer: Viewer = VIEWER,
                        db: Database = DB) -> list[MonthlyUsage]:
    first, last = _window(since, until)
    return await db.run(lambda s: monthly_usage(s, viewer.scope, first, last,
                                                customer_id=customer_id))


def install(app: FastAPI, others: Sequence[APIRouter] = ()) -> None:
    """Mount the API, and ``others`` (e.g. the executor's plans) behind the same authentication,
    and serve their OpenAPI document (the API's routes only, not the pages)."""
    app.include_router(router)
    for other in others:
        app.include_router(other, dependencies=[Depends(api_viewer)])
    routes = [*router.routes, *(route for other in others for route in other.routes)]
    document: dict[str, Any] = {}

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        if not document:
            document.update(get_openapi(
                title="Backstop portal read API", version="1",
                description=__doc__ or "", routes=routes))
            document.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "An API key: `backstop users api-key create`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "backstop_session"}}
            document["security"] = [{"apiKey": []}, {"session": []}]
        return JSONResponse(document)
