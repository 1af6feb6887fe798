"""Serving an ASGI app under uvicorn until a stop event, with signals left to the runner."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn


async def serve_until(app: Any, host: str, port: int, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
        # httptools parses HTTP several times faster than h11; the event loop is the caller's
        # (uvloop when the runner installed it).
        http="httptools",
    )
    server = uvicorn.Server(config)
    # The runner owns signals; uvicorn must not capture them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
