"""Per-credential rate limiting: one token bucket per token (or ping key).

Each caller has its own bucket, so a client in a retry loop spends only its own budget and
cannot starve the others. Buckets live in memory per replica: the limit is a guard rail against
runaway clients, not billing, so replicas need not agree exactly.
"""

from __future__ import annotations

import time

from services.ingest.errors import RateLimited

# Idle buckets are full again anyway; past this many, forgetting them all is harmless.
MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        """``rate`` requests per second with room for ``burst`` at once; ``rate`` 0 is off."""
        self.rate = rate
        self.burst = float(max(burst, 1))
        # key → (tokens left, when last refilled)
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, key: str) -> None:
        """Spend one request of ``key``'s budget, or raise :class:`RateLimited`."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited(retry_after=(1.0 - tokens) / self.rate)
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1.0, now)
