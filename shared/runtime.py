"""What a running service is given: its bus, its database, and the signal to stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.bus import Bus
from shared.db import Database


@dataclass
class Runtime:
    bus: Bus
    db: Database
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Services add what "ready" means for them beyond the connections (e.g. the evaluator:
    # its partitions loaded), so /readyz turns 200 when work is really being done.
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    # The ingest service's OpenAPI document, which the ops port serves (with /docs).
    openapi: Callable[[], dict[str, Any]] | None = None
    # Read APIs for operators and the portal that a service serves on the ops port (the
    # executor's history), as FastAPI routers.
    routers: list[Any] = field(default_factory=list)

    async def ready(self) -> dict[str, bool]:
        connections = {"nats": self.bus.connected,
                       "database": await asyncio.to_thread(self.db.ping)}
        return {**connections, **{name: check() for name, check in self.checks.items()}}
