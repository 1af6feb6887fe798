"""The retry schedule: exponential back-off with jitter, ``Retry-After`` honoured, and a deadline
after which a delivery is dead-lettered (kept, visible, replayable)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from shared.backoff import Backoff

# A receiver asking for more than a day is treated as asking for a day: we keep trying.
MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class Schedule:
    base: float  # the three from the settings (service.schedule_of), which own the defaults
    cap: float
    give_up_after: float
    jitter: float = 0.2  # ±20 %: replicas and many receivers do not retry in lockstep

    @cached_property
    def backoff(self) -> Backoff:
        return Backoff.exponential(self.base, self.cap, jitter=self.jitter)

    def delay(self, attempts: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        delay = self.backoff.delay(attempts, rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    def next_attempt(self, queued_at: datetime, now: datetime, attempts: int,
                     retry_after: float | None = None) -> datetime | None:
        """When to try again, or None once the deadline has passed (dead-letter)."""
        if (now - queued_at).total_seconds() >= self.give_up_after:
            return None
        return now + timedelta(seconds=self.delay(attempts, retry_after))
