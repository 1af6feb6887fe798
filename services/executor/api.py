"""The history over HTTP, read-only: the drill-down the CLI shows, as JSON.

``router(db, scope_of)`` builds a FastAPI router; whoever serves it (the executor's ops port, the
portal) says who the caller may see with ``scope_of(request)`` (a :class:`~shared.scopes.Scope`;
raise an HTTP error to refuse). Anything outside the scope is 404, like what does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.executor import drilldown
from services.executor.drilldown import NotFound
from shared.db import Database
from shared.scopes import Scope

PAGE = Query(100, ge=0, le=10_000, description="Rows at most (0: all).")
OFFSET = Query(0, ge=0)


def router(db: Database, scope_of: Callable[[Request], Scope],
           prefix: str = "/executor") -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["executor"])

    def scope(request: Request) -> Scope:
        return scope_of(request)

    async def read(work: Callable[[Any], Any]) -> Any:
        try:
            return await db.run(work)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    async def page(work: Callable[[Any], tuple[list[Any], int]], limit: int,
                   offset: int) -> dict[str, Any]:
        rows, total = await read(work)
        return {"total": total, "offset": offset, "limit": limit, "items": rows}

    @api.get("/plans", summary="Plans, with their last execution")
    async def plans(who: Scope = Depends(scope)) -> dict[str, Any]:
        rows = await read(lambda s: drilldown.plans(s, who))
        return {"total": len(rows), "items": rows}

    @api.get("/plans/{name}", summary="A plan as applied")
    async def plan(name: str, who: Scope = Depends(scope)) -> dict[str, Any]:
        return await read(lambda s: drilldown.plan(s, who, name))  # type: ignore[no-any-return]

    @api.get("/plans/{name}/executions", summary="A plan's executions, newest first")
    async def executions(name: str, limit: int = PAGE, offset: int = OFFSET,
                         who: Scope = Depends(scope)) -> dict[str, Any]:
        return await page(
            lambda s: drilldown.executions(s, who, name, limit=limit, offset=offset),
            limit, offset)

    @api.get("/executions/{execution_id}", summary="An execution with its activities")
    async def execution(execution_id: str, who: Scope = Depends(scope)) -> dict[str, Any]:
        return await read(  # type: ignore[no-any-return]
            lambda s: drilldown.execution(s, who, execution_id))

    @api.get("/executions/{execution_id}/tasks", summary="An execution's tasks in order")
    async def tasks(execution_id: str, activity: int | None = Query(None, ge=0),
                    limit: int = PAGE, offset: int = OFFSET,
                    who: Scope = Depends(scope)) -> dict[str, Any]:
        return await page(lambda s: drilldown.tasks(
            s, who, execution_id, activity=activity, limit=limit, offset=offset), limit, offset)

    @api.get("/tasks/{task_id}", summary="A task with its scripts' output and target facts")
    async def task(task_id: str, who: Scope = Depends(scope)) -> dict[str, Any]:
        return await read(lambda s: drilldown.task(s, who, task_id))  # type: ignore[no-any-return]

    @api.get("/tasks/{task_id}/files", summary="A task's files")
    async def files(task_id: str, limit: int = PAGE, offset: int = OFFSET,
                    who: Scope = Depends(scope)) -> dict[str, Any]:
        return await page(
            lambda s: drilldown.files(s, who, task_id, limit=limit, offset=offset),
            limit, offset)

    return api
