"""``/``: the overview — every job the viewer may see, counts per state, worst first, with a
30-day strip per job; filtered by state, customer and text (a GET form: links can be shared)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.access import current_viewer
from services.portal.errors import NotFound, PortalError
from services.portal.queries.overview import MAX_PAGE, InvalidFilter, OverviewFilter, overview
from services.portal.queries.states import STATES
from services.portal.rendering import page
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database, core_table
from shared.events import utcnow
from shared.scopes import Scope
from shared.tenancy import Account, Customer

router = APIRouter()
PAGE_SIZE = 50


def customers_in(session: Session, scope: Scope) -> list[tuple[str, str]]:
    """(id, name) of the customers the viewer may filter by."""
    table = core_table(Customer)
    query = sql_select(table.c.id, table.c.name).order_by(table.c.name)
    if scope.reseller_id is not None:
        query = query.where(table.c.reseller_id == scope.reseller_id)
    if scope.customer_id is not None:
        query = query.where(table.c.id == scope.customer_id)
    return [(row.id, row.name) for row in session.execute(query)]


def account_in(session: Session, scope: Scope, account_id: str) -> tuple[str, str] | None:
    """(account name, customer name) when the account is in ``scope``."""
    accounts, customers = core_table(Account), core_table(Customer)
    row = session.execute(
        sql_select(accounts.c.name, customers.c.name.label("customer"))
        .join(customers, customers.c.id == accounts.c.customer_id)
        .where(accounts.c.id == account_id,
               scope.where(accounts.c.reseller_id, accounts.c.customer_id))).first()
    return (row.name, row.customer) if row is not None else None


@router.get("/", response_class=HTMLResponse)
async def overview_page(
    request: Request,
    state: str = Query("", max_length=20, description="Only jobs in this state."),
    customer: str = Query("", max_length=32, description="Only this customer's jobs (id)."),
    q: str = Query("", max_length=200, description="Text in the job, account or customer name."),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    try:
        where = OverviewFilter(states=frozenset([state]) if state else frozenset(),
                               customer_id=customer or None, text=q, limit=limit,
                               offset=offset)
    except InvalidFilter as exc:
        raise PortalError(str(exc)) from exc

    def work(session: Session) -> tuple[object, list[tuple[str, str]]]:
        return (overview(session, viewer.scope, utcnow(), where),
                customers_in(session, viewer.scope))

    found, customers = await db.run(work)
    return await page(request, "overview.html", {
        "title": "Overview", "view": found, "states": STATES, "customers": customers,
        "chosen": {"state": state, "customer": customer, "q": q, "limit": limit},
        "base": "/",
    })


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(
    request: Request, account_id: str = Path(..., max_length=32),
    state: str = Query("", max_length=20), offset: int = Query(0, ge=0, le=10_000_000),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    """One account's jobs: the overview narrowed to it (404 outside the viewer's scope)."""
    try:
        where = OverviewFilter(states=frozenset([state]) if state else frozenset(),
                               account_id=account_id, limit=PAGE_SIZE, offset=offset)
    except InvalidFilter as exc:
        raise PortalError(str(exc)) from exc

    def work(session: Session) -> tuple[tuple[str, str] | None, object]:
        found = account_in(session, viewer.scope, account_id)
        if found is None:
            return None, None
        return found, overview(session, viewer.scope, utcnow(), where)

    names, view = await db.run(work)
    if names is None:
        raise NotFound()
    return await page(request, "overview.html", {
        "title": names[0], "account": {"name": names[0], "customer": names[1]},
        "view": view, "states": STATES, "customers": [],
        "chosen": {"state": state, "customer": "", "q": "", "limit": PAGE_SIZE},
        "base": f"/accounts/{account_id}",
    })
