"""How long to wait after consecutive failures: one schedule type for every retry in Backstop.

A schedule is a list of waits: the n-th failure in a row waits the n-th, every failure past the
list waits the last. Exponential back-off up to a cap is such a list (:meth:`Backoff.exponential`);
bus consumers use a hand-picked one. Jitter spreads each wait so replicas and many receivers do
not retry in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    delays: tuple[float, ...]
    jitter: float = 0.0  # 0.2: each wait anywhere within ±20 % of its step

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a back-off needs at least one delay")

    @classmethod
    def of(cls, *delays: float, jitter: float = 0.0) -> Backoff:
        return cls(tuple(delays), jitter)

    @classmethod
    def exponential(cls, base: float, cap: float, *, jitter: float = 0.0) -> Backoff:
        """``base``, twice that, four times… up to ``cap``."""
        if base <= 0 or base >= cap:
            return cls((min(base, cap),), jitter)
        delays: list[float] = []
        while (step := base * 2 ** len(delays)) < cap:
            delays.append(step)
        return cls((*delays, cap), jitter)

    @property
    def longest(self) -> float:
        return self.delays[-1]

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first)."""
        step = self.delays[min(max(failures, 1), len(self.delays)) - 1]
        if not self.jitter:
            return step
        return step * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
