"""The operations endpoints every service serves on its ops port: /healthz, /readyz and
/metrics, and where the process runs ingest, the API's /openapi.json and /docs.

/docs is Swagger UI from the ``fastapi-offline`` package's copy, served here: the page must work
on a network that reaches nothing but Backstop, and tell no third party where Backstop runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.runtime import Runtime

DOCS_ASSETS = "/docs-assets"
# Relative to /docs, so the page also works behind a proxy that serves the ops port under a path.
_ASSETS = DOCS_ASSETS.lstrip("/")


def ops_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await runtime.ready()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/openapi.json")
    async def openapi() -> dict[str, Any]:
        if runtime.openapi is None:
            raise HTTPException(404, "this process does not run the ingest API")
        return runtime.openapi()

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        if runtime.openapi is None:
            raise HTTPException(404, "this process does not run the ingest API")
        return get_swagger_ui_html(
            openapi_url="openapi.json", title="Backstop ingest API",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon.png",
            # Swagger UI's default shows a badge loaded from validator.swagger.io, with the
            # document's address in its query.
            swagger_ui_parameters={"validatorUrl": None},
        )

    return router


def ops_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="backstop ops", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ops_router(runtime))
    for router in runtime.routers:
        app.include_router(router)
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs")
    return app
