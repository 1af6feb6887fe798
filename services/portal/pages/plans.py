"""Plans (the executor's history, DPOD's drill-down): ``/plans`` lists the plans in the viewer's
scope, ``/plans/<name>`` shows one with its last executions, ``/executions/<id>`` an execution's
activities and tasks, ``/tasks/<id>`` a task with its scripts' output and its files (paged).
``POST /plans/<name>/run`` ("Run now") publishes the same trigger as ``backstop plans run``
on the portal's bus. Every read is :mod:`services.executor.drilldown`'s, filtered by the
viewer's scope in SQL: an id from another tenant is 404. The same reads are served as JSON under
``/api/v1`` by the executor's own read router (:func:`install_api`)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.executor import api as executor_api
from services.executor import control, drilldown
from services.portal.access import current_viewer, editor
from services.portal.errors import NotFound, Unavailable
from services.portal.rendering import TEMPLATES, page
from services.portal.state import database, portal
from services.portal.users import Viewer
from shared.bus import BusUnavailable
from shared.config import ExecutorSettings
from shared.db import Database
from shared.scopes import Scope

log = logging.getLogger(__name__)

router = APIRouter()
API_PREFIX = "/api/v1"
TASKS_PAGE = 100  # tasks on an execution's page
FILES_PAGE = 100  # files on a task's page
# The executions a plan page shows: as many as the executor keeps (BACKSTOP_EXECUTOR_HISTORY_
# EXECUTIONS, read where the portal runs with the executor's settings, as in ``backstop up``).
DEFAULT_EXECUTIONS: int = ExecutorSettings.model_fields["executor_history_executions"].default

# The colour of each execution and task status, in the portal's existing state classes.
_TONES = {"succeeded": "success", "failed": "failure", "interrupted": "failure",
          "stopped": "failure", "partial": "late", "running": "running", "queued": "running",
          "pending": "none", "skipped": "none"}


def tone(status: str | None) -> str:
    return _TONES.get(status or "", "none")


TEMPLATES.env.filters.update(tone=tone)

NAME = Path(..., max_length=128)
EXECUTION_ID = Path(..., max_length=32)
TASK_ID = Path(..., max_length=48)
OFFSET = Query(0, ge=0, le=10_000_000)


def _history_length(request: Request) -> int:
    kept = getattr(portal(request).settings, "executor_history_executions", DEFAULT_EXECUTIONS)
    return int(kept)


async def _read(db: Database, work: Any) -> Any:
    try:
        return await db.run(work)
    except drilldown.NotFound:
        raise NotFound() from None


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    spec = document.get("spec", {})
    schedule = spec.get("schedule")
    return {"account": spec.get("account"),
            "schedule": f"{schedule['cron']} ({schedule['timezone']})" if schedule else None,
            "activities": spec.get("activities", []), "windows": spec.get("windows", [])}


@router.get("/plans", response_class=HTMLResponse)
async def plans_page(request: Request, viewer: Viewer = Depends(current_viewer),
                     db: Database = Depends(database)) -> Response:
    rows = await _read(db, lambda s: drilldown.plans(s, viewer.scope))
    return await page(request, "plans.html", {"title": "Plans", "plans": rows})


@router.get("/plans/{name}", response_class=HTMLResponse)
async def plan_page(
    request: Request, name: str = NAME,
    queued: str | None = Query(None, max_length=32, pattern="^[0-9a-f]+$",
                               description="The execution Run now just queued."),
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    keep = _history_length(request)

    def load(session: Session) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        plan = drilldown.plan(session, viewer.scope, name)
        rows, total = drilldown.executions(session, viewer.scope, name, limit=keep)
        return plan, rows, total

    plan, rows, total = await _read(db, load)
    return await page(request, "plan.html", {
        "title": plan["name"], "plan": plan, "spec": _summary(plan["document"]),
        "executions": rows, "total": total, "keep": keep, "queued": queued,
        "queued_seen": any(r["id"] == queued for r in rows)})


@router.post("/plans/{name}/run")
async def run_now(request: Request, name: str = NAME, viewer: Viewer = Depends(editor),
                  db: Database = Depends(database)) -> Response:
    """Run the plan now: the trigger ``backstop plans run`` publishes, on the portal's bus."""

    def prepare(session: Session) -> Any:
        drilldown.plan(session, viewer.scope, name)  # NotFound outside the scope
        return control.prepare(session, name)

    bus = portal(request).bus
    if bus is None:
        raise Unavailable("This portal has no connection to the message bus: it cannot start "
                          "plans. Run the plan with backstop plans run.")
    trigger = await _read(db, prepare)
    try:
        await control.run(bus, trigger)
    except BusUnavailable as exc:
        raise Unavailable(f"The message bus does not answer ({exc}); try again in a minute."
                          ) from exc
    log.info("portal: %s ran plan %s now (execution %s)", viewer.email, name,
             trigger.execution_id)
    return RedirectResponse(f"/plans/{quote(name, safe='')}?queued={trigger.execution_id}",
                            status_code=303)


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
async def execution_page(
    request: Request, execution_id: str = EXECUTION_ID,
    activity: int | None = Query(None, ge=0, le=10_000, description="Only this activity's."),
    offset: int = OFFSET,
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    def load(session: Session) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        found = drilldown.execution(session, viewer.scope, execution_id)
        tasks, total = drilldown.tasks(session, viewer.scope, execution_id, activity=activity,
                                       limit=TASKS_PAGE, offset=offset)
        return found, tasks, total

    execution, tasks, total = await _read(db, load)
    return await page(request, "execution.html", {
        "title": f"{execution['plan']} · {execution['id'][:8]}", "execution": execution,
        "tasks": tasks, "total": total, "activity": activity, "offset": offset,
        "page_size": TASKS_PAGE})


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: str = TASK_ID, offset: int = OFFSET,
    viewer: Viewer = Depends(current_viewer), db: Database = Depends(database),
) -> Response:
    def load(session: Session) -> tuple[dict[str, Any], str, list[dict[str, Any]], int]:
        task = drilldown.task(session, viewer.scope, task_id)
        plan = drilldown.execution(session, viewer.scope, task["execution_id"])["plan"]
        files, total = drilldown.files(session, viewer.scope, task_id, limit=FILES_PAGE,
                                       offset=offset)
        return task, plan, files, total

    task, plan, files, total = await _read(db, load)
    return await page(request, "task.html", {
        "title": f"{task['target']} · {task['item']}", "task": task, "plan": plan,
        "files": files, "total": total, "offset": offset, "page_size": FILES_PAGE})


def session_scope(request: Request) -> Scope:
    """The scope of the viewer the API's authentication found (it runs first, for the router)."""
    viewer: Viewer = request.state.viewer
    return viewer.scope


def api_router(db: Database) -> APIRouter:
    """The executor's read API (plans, executions, tasks, files) under ``/api/v1``, scoped by
    the viewer the portal's API found (a session's user or an API key's)."""
    return executor_api.router(db, session_scope, prefix=API_PREFIX)
