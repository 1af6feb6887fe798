"""Runs the ingest API under uvicorn until the runtime says stop."""

from __future__ import annotations

import gc

from services.ingest.api import create_app
from shared.config import IngestSettings
from shared.runtime import Runtime
from shared.webserver import serve_until


async def run(settings: IngestSettings, runtime: Runtime) -> None:
    app = create_app(settings, runtime)
    # What exists now (modules, the app, settings) lives for the whole process: moving it out of
    # the collector's view makes every later collection on the request path cheaper.
    gc.collect()
    gc.freeze()
    runtime.openapi = app.openapi  # served on the ops port, with /docs
    await serve_until(app, settings.ingest_host, settings.ingest_port, runtime.stop,
                      settings.http_limits(), settings.access_log)
