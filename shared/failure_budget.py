"""A budget of failures per key (a client address, an account): a token bucket of failures.

Each key may fail ``burst`` times at once and ``rate`` times a second after that; past it,
:meth:`FailureBudget.exhausted` says how long to wait. Ingest counts failed token lookups per
client address with it, the portal failed logins per address and per account.

Buckets live in memory per replica: they are a brake on guessing, not an audit trail. A key that
stopped failing is full again anyway, so when more than ``max_keys`` are held the least recently
failed one is forgotten.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 100_000


class FailureBudget:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS) -> None:
        """``rate`` failures per second with room for ``burst`` at once; ``rate`` 0 is off."""
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._clock = clock
        self._max_keys = max_keys
        # key → (failures left, when last refilled); least recently failed first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def exhausted(self, key: str | None) -> float | None:
        """Seconds until ``key`` may fail again, or None while it has failures left."""
        if self.rate <= 0 or key is None:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        left = self._refilled(bucket)
        return (1.0 - left) / self.rate if left < 1.0 else None

    def failed(self, key: str | None) -> None:
        """Spend one failure of ``key``'s budget."""
        if self.rate <= 0 or key is None:
            return
        bucket = self._buckets.get(key)
        left = self.burst if bucket is None else self._refilled(bucket)
        # Concurrent failures may overdraw: the bucket stays empty rather than going into debt.
        self._buckets[key] = (max(left - 1.0, 0.0), self._clock())
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def _refilled(self, bucket: tuple[float, float]) -> float:
        left, then = bucket
        return min(self.burst, left + (self._clock() - then) * self.rate)


def address_block(client: str) -> str:
    """The key of a client address: IPv4 as it is, IPv6 per /64 (the block one host usually
    gets), anything else (a test client, a Unix socket) as it is."""
    if ":" not in client:
        return client
    try:
        return str(ipaddress.IPv6Network((client, 64), strict=False))
    except ValueError:
        return client
