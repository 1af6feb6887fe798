"""Threshold resolution: defaults in one place, most specific override wins."""

from __future__ import annotations

import pytest

from services.evaluator.engine import schedule_settings
from services.evaluator.policies import DEFAULTS, Override, PolicyBook, PolicyError, parse_value
from shared.events import ScheduleSet, Tenant

T = Tenant(reseller="r", customer="c", account="a")


def test_defaults_apply_without_overrides() -> None:
    book = PolicyBook()
    for name, default in DEFAULTS.items():
        assert book.value(name, T, "job") == default


def test_inheritance_order() -> None:
    overrides = [Override("reseller", "r", "grace_seconds", "100"),
                 Override("customer", "c", "grace_seconds", "200"),
                 Override("account", "a", "grace_seconds", "300"),
                 Override("job", "a/nightly", "grace_seconds", "400")]
    book = PolicyBook.build(overrides)
    assert book.value("grace_seconds", T, "nightly") == 400
    assert book.value("grace_seconds", T, "other") == 300
    assert book.value("grace_seconds", T, "other", {"grace_seconds": 50}) == 50
    assert book.value("grace_seconds", T, "nightly", {"grace_seconds": 50}) == 400
    other = Tenant(reseller="r", customer="c2", account="a2")
    assert book.value("grace_seconds", other) == 100


def test_schedule_defaults_do_not_mask_account_settings() -> None:
    sent = ScheduleSet(tenant=T, job="j", interval_seconds=60)
    assert schedule_settings(sent) == {}
    chosen = ScheduleSet(tenant=T, job="j", interval_seconds=60, grace_seconds=120,
                         max_runtime_seconds=600)
    assert schedule_settings(chosen) == {"grace_seconds": 120, "max_runtime_seconds": 600}


def test_unknown_or_bad_values_are_refused_but_stored_ones_are_skipped() -> None:
    with pytest.raises(PolicyError):
        parse_value("nope", "1")
    with pytest.raises(PolicyError):
        parse_value("quota_percent", "lots")
    book = PolicyBook.build([Override("account", "a", "from_the_future", "1"),
                             Override("account", "a", "quota_percent", "bad")],
                            {"restic": "not a version", "borg": "1.2.0"})
    assert book.value("quota_percent", T) == 90.0
    assert list(book.min_versions) == ["borg"]
