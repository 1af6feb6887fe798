"""The deadline index: every job's and account's next moment of interest, earliest first.

Time-based alerts are found by popping this heap, never by scanning all jobs on a timer. Moving
a deadline pushes a new entry and leaves the old one behind; stale entries are recognised (their
time no longer matches) and skipped when they surface, and the heap is compacted when they pile up.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from datetime import datetime


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Hashable]] = []
        self._current: dict[Hashable, datetime] = {}
        self._counter = 0  # tie-breaker: keys need not be comparable

    def __len__(self) -> int:
        return len(self._current)

    def set(self, key: Hashable, when: datetime | None) -> None:
        """Move ``key``'s deadline to ``when``; None removes it."""
        if when is None:
            self._current.pop(key, None)
            return
        if self._current.get(key) == when:
            return
        self._current[key] = when
        self._counter += 1
        heapq.heappush(self._heap, (when, self._counter, key))
        if len(self._heap) > 2 * len(self._current) + 1024:
            self._compact()

    def get(self, key: Hashable) -> datetime | None:
        return self._current.get(key)

    def earliest(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[Hashable]:
        """Remove and return every key whose deadline is at or before ``now``, earliest first."""
        due: list[Hashable] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return due
            _, _, key = heapq.heappop(self._heap)
            del self._current[key]
            due.append(key)

    def rebuild(self, entries: list[tuple[Hashable, datetime]]) -> None:
        """Replace everything at once (start-up): heapify is O(n), pushing one by one is not."""
        self._current = dict(entries)
        self._heap = [(when, i, key) for i, (key, when) in enumerate(self._current.items())]
        self._counter = len(self._heap)
        heapq.heapify(self._heap)

    def _drop_stale(self) -> None:
        heap, current = self._heap, self._current
        while heap and current.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self.rebuild(list(self._current.items()))
