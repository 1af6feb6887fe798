"""What a running service is given: its bus, its database, and the signal to stop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.bus import Bus
from shared.db import Database


@dataclass
class Runtime:
    bus: Bus
    db: Database
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def ready(self) -> dict[str, bool]:
        return {"nats": self.bus.connected, "database": await asyncio.to_thread(self.db.ping)}
