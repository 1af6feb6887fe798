"""The two servers the benchmark compares, each run as its own process.

``real``: the ingest service in embedded mode (nats-server from the wheel, SQLite), rate limit
off, on uvloop + httptools as production runs it. ``bare``: a FastAPI app with the same request
model that stores nothing: the ceiling Python + FastAPI + uvicorn allow on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from pathlib import Path

import uvloop
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from services.ingest.schemas import Accepted, RunReport
from services.ingest.service import run as run_ingest
from shared.bus import Bus
from shared.config import IngestSettings
from shared.db import Database
from shared.natsd import EmbeddedNats
from shared.runtime import Runtime
from shared.webserver import serve_until


async def real(port: int, data_dir: Path, nats_port: int) -> None:
    nats = EmbeddedNats(data_dir / "nats", port=nats_port)
    settings = IngestSettings(
        data_dir=data_dir, nats_url=nats.start(), ingest_host="127.0.0.1", ingest_port=port,
        ingest_rate_limit=0,
    )
    db = Database(settings.sqlalchemy_url())
    bus = Bus(settings.nats_servers(), name="bench")
    await bus.connect()
    runtime = Runtime(bus=bus, db=db)
    _stop_on_sigterm(runtime.stop)
    try:
        await run_ingest(settings, runtime)
    finally:
        await bus.close()
        db.dispose()
        nats.stop()


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/runs", status_code=202, response_model=Accepted)
    async def post_run(report: RunReport) -> Accepted:
        return Accepted(event_id=uuid.uuid4().hex)

    @app.get("/ping/{key}", response_class=PlainTextResponse)
    async def ping(key: str) -> PlainTextResponse:
        return PlainTextResponse("OK")

    return app


async def bare(port: int) -> None:
    stop = asyncio.Event()
    _stop_on_sigterm(stop)
    await serve_until(bare_app(), "127.0.0.1", port, stop)


def _stop_on_sigterm(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["real", "bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--nats-port", type=int, default=0)
    args = parser.parse_args()
    if args.kind == "real":
        uvloop.run(real(args.port, args.data_dir, args.nats_port))
    else:
        uvloop.run(bare(args.port))


if __name__ == "__main__":
    main()
