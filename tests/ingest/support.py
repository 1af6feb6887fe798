"""Helpers the ingest tests share (fixtures live in conftest.py): the real app over real NATS
and a real database, called in-process, and the events it published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from services.ingest.api import create_app
from shared.bus import Bus
from shared.config import IngestSettings
from shared.db import Database
from shared.events import Event, decode
from shared.runtime import Runtime
from shared.streams import INGEST
from shared.tenancy import IssuedAccount
from tests.support import make_account

E = TypeVar("E", bound=Event)


@dataclass
class Ingest:
    client: httpx.AsyncClient
    db: Database
    bus: Bus
    a: IssuedAccount
    b: IssuedAccount
    app: FastAPI

    def client_from(self, address: str) -> httpx.AsyncClient:
        """Another client of the same app, calling from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://ingest")

    @staticmethod
    def auth(issued: IssuedAccount) -> dict[str, str]:
        return {"Authorization": f"Bearer {issued.token}"}

    async def post_run(self, body: dict[str, Any], issued: IssuedAccount | None = None,
                       ) -> httpx.Response:
        return await self.client.post("/v1/runs", json=body, headers=self.auth(issued or self.a))


@asynccontextmanager
async def running_ingest(db: Database, bus: Bus, **settings: Any) -> AsyncIterator[Ingest]:
    """The ingest app with two accounts. Caching is off unless asked for, so tests see changes
    (e.g. a revocation) at once."""
    config = {"ingest_token_cache_seconds": 0, "ingest_rate_limit": 0} | settings
    app = create_app(IngestSettings(**config), Runtime(bus=bus, db=db))
    a = make_account(db, name="account-a")
    b = make_account(db, name="account-b")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield Ingest(client=client, db=db, bus=bus, a=a, b=b, app=app)


async def stored_events(bus: Bus, kind: type[E] | None = None) -> list[E]:
    """Every event JetStream holds in the ingest stream (optionally one type), oldest first."""
    info = await bus.js.stream_info(INGEST.name)
    events: list[Any] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if seq == 0:
            continue
        msg = await bus.js.get_msg(INGEST.name, seq)
        assert msg.data is not None
        events.append(decode(msg.data))
    return [e for e in events if kind is None or isinstance(e, kind)]
