"""Serving an ASGI app under uvicorn until a stop event, with signals left to the runner."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn

from shared.accesslog import AccessLog
from shared.httplimits import HttpLimits, protocol_for


async def serve_until(
    app: Any, host: str, port: int, stop: asyncio.Event, limits: HttpLimits | None = None,
    access_log: bool = False,
) -> None:
    """``access_log``: a line per request (:mod:`shared.accesslog`; uvicorn's own stays off,
    it would print ping keys)."""
    limits = limits or HttpLimits()
    config = uvicorn.Config(
        AccessLog(app) if access_log else app, host=host, port=port, log_config=None,
        access_log=False, lifespan="off",
        # httptools parses HTTP several times faster than h11 (held to header size, count and
        # time limits it lacks); the event loop is the caller's (uvloop when the runner
        # installed it).
        http=protocol_for(limits), timeout_keep_alive=limits.keep_alive_timeout,
    )
    server = uvicorn.Server(config)
    # The runner owns signals; uvicorn must not capture them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
