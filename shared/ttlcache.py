"""A small time-bounded cache: what it holds is at most ``ttl`` seconds old, so a change made
elsewhere (a revoked token, new configuration) takes effect within that time.

It holds at most ``max_entries``; when full, the least recently used entry makes room, so a flood
of one-off keys pushes out other one-off keys while entries in use stay.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max(max_entries, 1)
        self._clock = clock
        # Least recently used first.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while fresh, else (False, None). A fresh entry counts as used."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self._clock():
            self._entries.move_to_end(key)
            return True, hit[1]
        return False, None

    def due(self, key: K, share: float = 0.25) -> bool:
        """Fresh, but in the last ``share`` of its life: time to refresh it ahead of expiry."""
        hit = self._entries.get(key)
        return hit is not None and 0 < hit[0] - self._clock() <= self._ttl * share

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def get(self, key: K, load: Callable[[], V]) -> V:
        fresh, value = self.peek(key)
        if fresh:
            return value  # type: ignore[return-value]
        loaded = load()
        self.put(key, loaded)
        return loaded
