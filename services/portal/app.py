"""The portal's FastAPI app: middleware, error pages, and the routers of each page.

Adding a page: a module with ``router = APIRouter()`` whose routes take
``viewer: Viewer = Depends(current_viewer)`` (``Depends(editor)`` for changes) and return
``await page(request, "<template>.html", {...})``; include its router in :data:`ROUTERS`.
Every form post is checked for its CSRF token before the route runs (``csrf_guard``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal import api, live, login
from services.portal.access import optional_viewer
from services.portal.branding import Branding
from services.portal.csrf import CsrfCookie, CsrfTokens, csrf_guard
from services.portal.errors import LoginRequired, NotFound, PortalError, Unavailable
from services.portal.headers import SecurityHeaders
from services.portal.live import AlertFeed
from services.portal.login import Authenticator, login_url
from services.portal.pages import (
    alert_log,
    alerts,
    job,
    overview,
    plans,
    preferences,
    quotas,
    settings,
)
from services.portal.pages import usage as usage_page
from services.portal.rendering import page
from services.portal.sessions import Sessions, signing_key
from services.portal.state import PortalState
from shared.bus import Bus
from shared.config import PortalSettings
from shared.db import Database

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

# Every page's router, in the order their paths are matched.
ROUTERS: list[APIRouter] = [login.router, overview.router, job.router, alert_log.router,
                            alerts.router, quotas.router, preferences.router, usage_page.router,
                            settings.router, plans.router, live.router]

_TITLES = {400: "Bad request", 401: "Login needed", 403: "Not allowed", 404: "Not found",
           405: "Not allowed", 413: "Too large", 422: "Bad request"}


def create_app(settings: PortalSettings, db: Database, bus: Bus | None) -> FastAPI:
    key = signing_key(settings)
    state = PortalState(
        settings=settings, db=db,
        sessions=Sessions(key, max_age_seconds=settings.portal_session_hours * 3600,
                          secure=settings.portal_secure_cookies),
        csrf=CsrfTokens(key),
        branding=Branding(db, settings.portal_reseller_hosts),
        authenticator=Authenticator(db, settings),
        feed=AlertFeed(bus),
        bus=bus,
    )
    app = FastAPI(title="Backstop portal", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_guard)])
    app.state.portal = state
    app.add_middleware(CsrfCookie, secure=settings.portal_secure_cookies)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    api.install(app, others=[plans.api_router(db)])
    install_error_pages(app)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def error_page(request: Request, status: int, title: str, message: str,
                     headers: dict[str, str] | None = None) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    try:
        await optional_viewer(request)  # the header shows who is logged in, and their brand
    except Exception:  # the error page must render even when the database does not answer
        log.debug("no viewer for the error page", exc_info=True)
    try:
        return await page(request, "error.html", {"title": title, "message": message},
                          status=status, headers=headers)
    except Exception:
        log.debug("error page without branding", exc_info=True)
        return Response(f"{title}: {message}", status_code=status, headers=headers,
                        media_type="text/plain")


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(PortalError)
    async def portal_error(request: Request, exc: PortalError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
        return await error_page(request, exc.status, exc.title, exc.message, headers)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request) or request.url.path == "/live":
            return JSONResponse({"detail": "log in first"}, status_code=401)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(login_url(path), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await error_page(request, 404, NotFound.title, NotFound().message)
        message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        return await error_page(request, exc.status_code,
                                _TITLES.get(exc.status_code, "Refused"), message,
                                dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in exc.errors()[:5])
        return await error_page(request, 400, "Bad request",
                                f"The address or form is not valid ({problems}).")

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        # PostgreSQL refuses some values outright (NUL in text): the address was not valid.
        return await error_page(request, 400, "Bad request",
                                "The address holds characters that cannot be looked up.")

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> Response:
        log.warning("portal: database unavailable: %s", exc.orig)
        return await error_page(request, 503, Unavailable.title,
                                "The database does not answer; try again in a minute.",
                                {"Retry-After": "30"})
