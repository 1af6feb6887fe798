"""The portal service: the run history projection (services/portal/history), the backup state
on the process's /metrics (services/portal/backup_state.py) and, unless ``BACKSTOP_PORTAL_PORT``
is 0, the web pages under uvicorn with their live alert feed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.portal.app import create_app
from services.portal.backup_state import register_backup_state
from services.portal.history.service import run_projection
from services.portal.pages import preferences
from services.portal.state import PortalState
from shared.config import PortalSettings
from shared.runtime import Runtime
from shared.webserver import serve_until


def build(settings: PortalSettings, runtime: Runtime) -> FastAPI:
    app = create_app(settings, runtime.db, runtime.bus)
    state: PortalState = app.state.portal
    state.stop = runtime.stop
    return app


async def run(settings: PortalSettings, runtime: Runtime) -> None:
    tasks: list[Awaitable[None]] = [run_projection(settings, runtime)]
    if settings.portal_port:
        app = build(settings, runtime)
        state: PortalState = app.state.portal
        tasks += [serve_until(app, settings.portal_host, settings.portal_port, runtime.stop,
                              settings.http_limits(), settings.access_log),
                  state.feed.run(runtime.stop)]
    collector = register_backup_state(runtime.db, settings)
    try:
        await asyncio.gather(*tasks)
    finally:
        REGISTRY.unregister(collector)
        if settings.portal_port:
            preferences.close_store(state)
