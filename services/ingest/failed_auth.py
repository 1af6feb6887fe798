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

import time
from collections.abc import Callable

from fastapi import Request

from services.ingest.errors import TooManyFailures
from shared.failure_budget import FailureBudget, address_block


def client_address(request: Request) -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


class FailedAuthLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        """``rate`` failures per second with room for ``burst`` at once; ``rate`` 0 is off."""
        self._budget = FailureBudget(rate, burst, clock)

    def check(self, client: str | None) -> None:
        """Raise :class:`TooManyFailures` if ``client`` has no failure left to spend."""
        wait = self._budget.exhausted(None if client is None else address_block(client))
        if wait is not None:
            raise TooManyFailures(retry_after=wait)

    def failed(self, client: str | None) -> None:
        """``client`` presented an unknown or revoked credential."""
        self._budget.failed(None if client is None else address_block(client))
