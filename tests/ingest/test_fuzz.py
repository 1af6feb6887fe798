"""Schemathesis fuzzes every operation of ingest's own OpenAPI document: no answer is a 5xx.

The app runs under uvicorn in its own thread and event loop (with its own NATS connection and a
SQLite database), the way a client sees it; schemathesis drives it over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from services.ingest.api import create_app
from shared.bus import Bus
from shared.config import IngestSettings
from shared.db import Database
from shared.natsd import free_port
from shared.runtime import Runtime
from tests.support import make_account

EXAMPLES_PER_OPERATION = 25


class LiveIngest:
    def __init__(self, nats_url: str, db: Database) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._nats_url, self._db = nats_url, db
        self._server: uvicorn.Server | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.openapi: dict[str, Any] = {}

    async def _main(self) -> None:
        bus = Bus(self._nats_url, name="fuzz")
        await bus.connect()
        app = create_app(IngestSettings(ingest_rate_limit=0), Runtime(bus=bus, db=self._db))
        self.openapi = app.openapi()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="off", http="httptools")
        self._server = uvicorn.Server(config)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        serving = asyncio.create_task(self._server.serve())
        # uvicorn offers no event to wait on.
        while not self._server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self._started.set()
        await serving
        await bus.close()

    def __enter__(self) -> LiveIngest:
        self._thread.start()
        assert self._started.wait(15), "ingest did not start"
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(15)


@pytest.fixture
def live(nats_url: str, tmp_path: Path) -> Iterator[tuple[LiveIngest, str, str]]:
    db = Database(f"sqlite:///{tmp_path / 'fuzz.db'}")
    db.upgrade()
    issued = make_account(db, name="fuzzed")
    with LiveIngest(nats_url, db) as live:
        yield live, issued.token, issued.ping_key
    db.dispose()


def test_no_input_makes_ingest_fail(live: tuple[LiveIngest, str, str]) -> None:
    server, token, ping_key = live
    schema = schemathesis.openapi.from_dict(server.openapi)
    auth = {"Authorization": f"Bearer {token}"}
    strategies = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        fixed: dict[str, Any] = {"headers": auth}
        if operation.path.startswith("/ping/"):
            fixed = {"path_parameters": {"key": ping_key}}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode, **fixed))
            if operation.path.startswith("/ping/"):  # also with unknown keys
                strategies.append(operation.as_strategy(generation_mode=mode))
    failures: list[str] = []
    codes: Counter[int] = Counter()

    @given(case=st.one_of(strategies))
    @settings(max_examples=EXAMPLES_PER_OPERATION * len(strategies), deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=10)
        codes[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:300]}\n{case.as_curl_command()}")

    fuzz()
    assert not failures, "\n".join(failures[:5])
    # The fuzzing must also get through validation, not only bounce off it.
    assert codes[200] + codes[202] > 50, codes
    print(sorted(codes.items()))
