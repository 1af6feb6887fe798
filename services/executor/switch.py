"""The global switch: ``backstop executor pause|resume`` (DPOD's "the system allows backups").

One entry of the ``backstop_executor_state`` key-value bucket, stored on disk by JetStream like
the triggers: it survives restarts of the executor and of NATS, and every replica reads the same
value. While it says paused, no plan starts (the plan flow asks :meth:`Switch.paused` before
anything else); plans already running finish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from shared.bus import Bus
from shared.events import utcnow
from shared.streams import EXECUTOR_STATE

KEY = "switch"


@dataclass(frozen=True)
class SwitchState:
    paused: bool
    changed_at: datetime | None = None
    by: str = ""
    reason: str = ""


class Switch:
    """Implements the flow's ``ExecutorSwitch`` port; the CLI sets it."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.bus.bucket(EXECUTOR_STATE)
        return self._kv

    async def state(self) -> SwitchState:
        kv = await self._bucket()
        try:
            entry = await kv.get(KEY)
        except KeyNotFoundError:
            return SwitchState(paused=False)
        if not entry.value:
            return SwitchState(paused=False)
        data = json.loads(entry.value)
        return SwitchState(paused=bool(data["paused"]),
                           changed_at=datetime.fromisoformat(data["changed_at"]),
                           by=str(data.get("by", "")), reason=str(data.get("reason", "")))

    async def paused(self) -> bool:
        return (await self.state()).paused

    async def set(self, paused: bool, *, by: str = "", reason: str = "") -> SwitchState:
        state = SwitchState(paused=paused, changed_at=utcnow(), by=by, reason=reason)
        kv = await self._bucket()
        assert state.changed_at is not None
        await kv.put(KEY, json.dumps({
            "paused": paused, "changed_at": state.changed_at.isoformat(), "by": by,
            "reason": reason}).encode())
        return state
