"""Runs the ingest API under uvicorn until the runtime says stop."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from services.ingest.api import create_app
from shared.config import IngestSettings
from shared.runtime import Runtime
from shared.webserver import serve_until


def build(settings: IngestSettings, runtime: Runtime) -> FastAPI:
    app = create_app(settings, runtime)
    runtime.openapi = app.openapi  # served on the ops port, with /docs
    return app


async def run(settings: IngestSettings, runtime: Runtime) -> None:
    app = build(settings, runtime)
    # What exists now (modules, the app, settings) lives for the whole process: moving it out of
    # the collector's view makes every later collection on the request path cheaper.
    gc.collect()
    gc.freeze()
    await serve_until(app, settings.ingest_host, settings.ingest_port, runtime.stop,
                      settings.http_limits(), settings.access_log)
