"""Failed authentications per client address: a token bucket of failures.

Each client address may fail ``burst`` times at once and ``rate`` times a second after that;
past it, its requests that would need a credential lookup are answered 429 before the database
is asked. Requests whose credential is cached as valid never come here, so a legitimate client
behind the same address as a guesser keeps working while its credential stays cached.

IPv6 clients are counted per /64, the block one host usually gets. The address is what the
ASGI server reports: behind a reverse proxy, uvicorn takes it from ``X-Forwarded-For`` only when
the proxy is trusted (``FORWARDED_ALLOW_IPS``), else every client is the proxy.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from services.ingest.errors import TooManyFailures

# Buckets of addresses that stopped failing are full again anyway: forgetting the least recently
# failed one makes room.
MAX_CLIENTS = 100_000


def client_address(request: Request) -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


class FailedAuthLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        """``rate`` failures per second with room for ``burst`` at once; ``rate`` 0 is off."""
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._clock = clock
        # client → (failures left, when last refilled); least recently failed first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str | None) -> None:
        """Raise :class:`TooManyFailures` if ``client`` has no failure left to spend."""
        if self.rate <= 0 or client is None:
            return
        bucket = self._buckets.get(_block(client))
        if bucket is None:
            return
        left = self._refilled(bucket)
        if left < 1.0:
            raise TooManyFailures(retry_after=(1.0 - left) / self.rate)

    def failed(self, client: str | None) -> None:
        """``client`` presented an unknown or revoked credential."""
        if self.rate <= 0 or client is None:
            return
        key = _block(client)
        bucket = self._buckets.get(key)
        left = self.burst if bucket is None else self._refilled(bucket)
        # Concurrent failures may overdraw: the bucket stays empty rather than going into debt.
        self._buckets[key] = (max(left - 1.0, 0.0), self._clock())
        self._buckets.move_to_end(key)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)

    def _refilled(self, bucket: tuple[float, float]) -> float:
        left, then = bucket
        return min(self.burst, left + (self._clock() - then) * self.rate)


def _block(client: str) -> str:
    if ":" not in client:
        return client
    try:
        return str(ipaddress.IPv6Network((client, 64), strict=False))
    except ValueError:
        return client  # not an address (a test client, a Unix socket): counted as it is
