"""``/jobs/<id>``: one job's runs, chart, schedule and thresholds."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from services.evaluator.tables import JobState
from services.portal.access import current_viewer
from services.portal.errors import NotFound
from services.portal.rendering import page
from services.portal.state import database
from services.portal.users import Viewer
from shared.db import Database, core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job

router = APIRouter()
ACCOUNTS = core_table(Account)


def _job(session: Session, scope: Scope, job_id: str) -> dict[str, object] | None:
    found = session.exec(
        select(Job, Account, Customer.name, JobState)
        .join(Account, col(Account.id) == Job.account_id)
        .join(Customer, col(Customer.id) == Account.customer_id)
        .join(JobState, col(JobState.job_id) == Job.id, isouter=True)
        .where(Job.id == job_id, scope.where(ACCOUNTS.c.reseller_id, ACCOUNTS.c.customer_id))
    ).first()
    if found is None:
        return None
    job, account, customer, state = found
    return {"id": job.id, "name": job.name, "account": account.name, "customer": customer,
            "state": state}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str = Path(..., max_length=32),
                   viewer: Viewer = Depends(current_viewer),
                   db: Database = Depends(database)) -> Response:
    job = await db.run(lambda s: _job(s, viewer.scope, job_id))
    if job is None:
        raise NotFound()
    return await page(request, "job.html", {"job": job, "title": job["name"]})
