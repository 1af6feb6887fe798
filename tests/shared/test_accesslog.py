"""The optional access log: one line per request with the ping key cut and no query; off by
default, and then absent. A real uvicorn serving a real app, and ``backstop run ingest``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared.logs import JsonFormatter
from shared.natsd import free_port
from shared.webserver import serve_until

KEY = "pk_Secr3tPingKey"

Serve = Callable[[bool], "contextlib.AbstractAsyncContextManager[str]"]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping/{key}/{slug}")
    async def ping(key: str, slug: str) -> dict[str, str]:
        return {"slug": slug}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture
def serve() -> Serve:
    @contextlib.asynccontextmanager
    async def serving(access_log: bool) -> AsyncIterator[str]:
        port, stop = free_port(), asyncio.Event()
        task = asyncio.create_task(serve_until(_app(), "127.0.0.1", port, stop,
                                               access_log=access_log))
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(200):
                    with contextlib.suppress(httpx.TransportError):
                        await client.get(url + "/")
                        break
                    await asyncio.sleep(0.02)
            yield url
        finally:
            stop.set()
            await task

    return serving


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "request"]


async def test_one_line_per_request_with_the_ping_key_cut(
    serve: Serve, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with serve(True) as url:
        caplog.clear()
        async with httpx.AsyncClient() as client:
            ok = await client.get(f"{url}/ping/{KEY}/nightly?rid=r-{KEY}")
            failed = await client.get(f"{url}/broken")
    assert (ok.status_code, failed.status_code) == (200, 500)
    first, second = request_lines(caplog)
    assert first.getMessage() == "GET /ping/.../nightly 200" and first.levelno == logging.INFO
    assert {k: getattr(first, k) for k in ("method", "path", "status", "client")} == {
        "method": "GET", "path": "/ping/.../nightly", "status": 200, "client": "127.0.0.1"}
    assert first.duration_ms >= 0 and first.port == int(url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    assert KEY not in JsonFormatter().format(first) and "rid" not in JsonFormatter().format(first)
    assert (second.path, second.status) == ("/broken", 500)  # type: ignore[attr-defined]


async def test_no_line_when_off(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with serve(False) as url:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/ping/{KEY}/nightly")).status_code == 200
    assert request_lines(caplog) == []


@pytest.mark.parametrize("setting", ["true", None])
def test_backstop_run_ingest_logs_requests_on_both_ports_when_asked(
    setting: str | None, nats_url: str, sqlite_url: str, tmp_path: Path,
) -> None:
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], check=True,
                   env={**os.environ, "BACKSTOP_DATABASE_URL": sqlite_url}, capture_output=True)
    ops_port, ingest_port = free_port(), free_port()
    env = {**os.environ, "BACKSTOP_NATS_URL": nats_url, "BACKSTOP_DATABASE_URL": sqlite_url,
           "BACKSTOP_OPS_PORT": str(ops_port), "BACKSTOP_INGEST_PORT": str(ingest_port),
           "BACKSTOP_DATA_DIR": str(tmp_path), "BACKSTOP_LOG_FORMAT": "json"}
    env.pop("BACKSTOP_ACCESS_LOG", None)
    if setting:
        env["BACKSTOP_ACCESS_LOG"] = setting
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "ingest"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{ops_port}/readyz").status_code == 200:
                    break
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{ingest_port}/ping/{KEY}/nightly?rid=x")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [e for e in entries if e.get("event") == "request"]
    assert KEY not in output
    if not setting:
        assert requests == []
        return
    assert {(e["port"], e["method"], e["path"], e["status"]) for e in requests} >= {
        (ops_port, "GET", "/readyz", 200), (ingest_port, "GET", "/ping/.../nightly", 404)}
