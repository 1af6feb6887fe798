"""The time-bounded cache: nothing older than its ttl, and a hint to refresh ahead of expiry."""

from shared.ttlcache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl_and_are_due_in_their_last_quarter() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock=clock)
    cache.put("k", 1)
    assert cache.peek("k") == (True, 1) and not cache.due("k")
    clock.now = 7.4
    assert not cache.due("k")
    clock.now = 7.6
    assert cache.peek("k") == (True, 1) and cache.due("k")
    clock.now = 10.0
    assert cache.peek("k") == (False, None) and not cache.due("k")
    assert not cache.due("missing")


def test_a_full_cache_evicts_the_least_recently_used_entry() -> None:
    """It used to empty itself completely: a flood of one-off keys took the hot ones with it."""
    cache: TtlCache[str, int] = TtlCache(10.0, max_entries=3, clock=Clock())
    cache.put("hot", 0)
    for n in range(1000):
        cache.put(f"guess-{n}", n)
        assert cache.peek("hot") == (True, 0)
    assert len(cache) == 3
    assert cache.peek("guess-999") == (True, 999) and cache.peek("guess-0") == (False, None)
    cache.discard("hot")
    assert cache.peek("hot") == (False, None)
