"""A budget of failures per key: a burst at once, then a steady rate, each key on its own."""

from __future__ import annotations

import pytest

from shared.failure_budget import FailureBudget, address_block


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_fail_its_burst_then_waits_for_the_rate() -> None:
    clock = Clock()
    budget = FailureBudget(rate=0.5, burst=3, clock=clock)
    for _ in range(3):
        assert budget.exhausted("a") is None
        budget.failed("a")
    assert budget.exhausted("a") == pytest.approx(2.0)
    assert budget.exhausted("b") is None  # another key has its own
    clock.now += 2.0
    assert budget.exhausted("a") is None
    budget.failed("a")
    assert budget.exhausted("a") == pytest.approx(2.0)


def test_off_and_unknown_keys_never_limit() -> None:
    budget = FailureBudget(rate=0, burst=1)
    budget.failed("a")
    budget.failed("a")
    assert budget.exhausted("a") is None
    limited = FailureBudget(rate=1, burst=1)
    limited.failed(None)
    assert limited.exhausted(None) is None


def test_the_least_recently_failed_key_is_forgotten_when_full() -> None:
    budget = FailureBudget(rate=0.001, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        budget.failed(key)
    assert budget.exhausted("a") is None  # forgotten: full again
    assert budget.exhausted("b") is not None and budget.exhausted("c") is not None


def test_ipv6_addresses_count_per_64() -> None:
    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2:bbbb::9")
    assert address_block("2001:db8:1:3::1") != address_block("2001:db8:1:2::1")
    assert address_block("192.0.2.7") == "192.0.2.7"
    assert address_block("testclient") == "testclient"
