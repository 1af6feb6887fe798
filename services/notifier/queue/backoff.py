"""The retry schedule: exponential back-off with jitter, ``Retry-After`` honoured, and a deadline
after which a delivery is dead-lettered (kept, visible, replayable)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# A receiver asking for more than a day is treated as asking for a day: we keep trying.
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class Schedule:
    base: float  # the three from the settings (service.schedule_of), which own the defaults
    cap: float
    give_up_after: float
    jitter: float = 0.2  # ±20 %: replicas and many receivers do not retry in lockstep

    def delay(self, attempts: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        exp = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        delay = exp * spread
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def next_attempt(self, queued_at: datetime, now: datetime, attempts: int,
                     retry_after: float | None = None) -> datetime | None:
        """When to try again, or None once the deadline has passed (dead-letter)."""
        if (now - queued_at).total_seconds() >= self.give_up_after:
            return None
        return now + timedelta(seconds=self.delay(attempts, retry_after))
