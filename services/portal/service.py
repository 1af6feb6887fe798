"""Runs the portal under uvicorn until the runtime says stop, with its live alert feed."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.portal.app import create_app
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
    if not settings.portal_port:
        return
    app = build(settings, runtime)
    state: PortalState = app.state.portal
    await asyncio.gather(
        serve_until(app, settings.portal_host, settings.portal_port, runtime.stop,
                    settings.http_limits(), settings.access_log),
        state.feed.run(runtime.stop),
    )
