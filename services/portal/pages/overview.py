"""``/``: the overview — every job the viewer may see, worst first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from services.evaluator.tables import JobState
from services.portal.access import current_viewer
from services.portal.rendering import page
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database, core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer

router = APIRouter()


def _rows(session: Session, scope: Scope) -> list[dict[str, object]]:
    found = session.exec(
        select(JobState, Account.name, Customer.name)
        .join(Account, col(Account.id) == JobState.account_id)
        .join(Customer, col(Customer.id) == Account.customer_id)
        .where(scope.where(core_table(Account).c.reseller_id, core_table(Account).c.customer_id))
        .order_by(col(JobState.consecutive_failures).desc(), col(JobState.job_name))
        .limit(500))
    return [{"job_id": js.job_id, "job": js.job_name, "account": account, "customer": customer,
             "state": js.last_status or "never run", "last_run_at": js.last_run_at,
             "next_due_at": js.next_due_at} for js, account, customer in found]


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, viewer: Viewer = Depends(current_viewer),
                   db: Database = Depends(database)) -> Response:
    rows = await db.run(lambda s: _rows(s, viewer.scope))
    return await page(request, "overview.html", {"rows": rows, "title": "Overview"})
