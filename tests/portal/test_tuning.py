"""Thresholds and the reminder interval from the portal, through the evaluator's and the
notifier's facades: who may edit follows the role and the read-only flag."""

from __future__ import annotations

import logging

import pytest

from services.evaluator import admin as evaluator
from services.notifier.policy.reminders import repeat_interval
from services.portal.actions import tuning
from services.portal.rights import Forbidden, Invalid, NotFound, ReadOnly
from shared.db import Database
from shared.scopes import Scope
from shared.tenancy import get_or_create_job
from tests.portal.support import editor, scope_of
from tests.support import make_account


def test_a_customer_user_sets_their_accounts_quota_threshold_and_a_jobs_tolerance(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    with db.session() as session:
        get_or_create_job(session, acme.account.id, "nightly")
    who = editor(scope_of(acme))
    with db.session() as session, caplog.at_level(logging.INFO, logger="backstop.audit"):
        account = tuning.account_target(session, who.scope, acme.account.id)
        tuning.set_threshold(session, who, account, "quota_percent", "80")
        job = tuning.account_target(session, who.scope, acme.account.id, "nightly")
        tuning.set_threshold(session, who, job, "failures_tolerance", "3")
    with db.session() as session:
        values = evaluator.effective(session, acme.account.id, "nightly").values
        shown = {s.name: s for s in tuning.in_force(session, who.scope, acme.account.id,
                                                    "nightly").values}
    assert values["quota_percent"] == (80.0, "account")
    [line, _] = [r for r in caplog.records if r.name == "backstop.audit"]
    assert (line.getMessage(), line.actor, line.scope_id, line.setting, line.value) == (  # type: ignore[attr-defined]
        "threshold set", "portal:tester@example.com", acme.account.id, "quota_percent", "80")
    assert values["failures_tolerance"] == (3, "job")
    assert (shown["failures_tolerance"].here, shown["quota_percent"].here) == ("3", None)
    with db.session() as session:
        tuning.unset_threshold(session, who, job, "failures_tolerance")
    with db.session() as session:
        assert evaluator.effective(session, acme.account.id, "nightly").values[
            "failures_tolerance"] == (1, "default")


def test_refusals(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    globex = make_account(db, reseller="MSP", customer="Globex")
    with db.session() as session:
        with pytest.raises(NotFound):
            tuning.account_target(session, scope_of(globex), acme.account.id)
        with pytest.raises(NotFound):
            tuning.account_target(session, scope_of(acme), acme.account.id, "no-such-job")
        target = tuning.account_target(session, scope_of(acme), acme.account.id)
        with pytest.raises(ReadOnly):
            tuning.set_threshold(session, editor(scope_of(acme), read_only=True), target,
                                 "quota_percent", "80")
        with pytest.raises(Invalid):
            tuning.set_threshold(session, editor(scope_of(acme)), target, "quota_percent",
                                 "eighty")
        with pytest.raises(Invalid):
            tuning.set_threshold(session, editor(scope_of(acme)), target, "no_such", "1")
        for not_a_number in ("nan", "inf", "-1"):
            with pytest.raises(Invalid):
                tuning.set_threshold(session, editor(scope_of(acme)), target,
                                     "never_used_days", not_a_number)
        customer = tuning.customer_target(session, scope_of(acme), acme.customer.id)
        with pytest.raises(Forbidden):  # a customer's own level is the reseller's to set
            tuning.set_threshold(session, editor(scope_of(acme)), customer, "quota_percent",
                                 "80")
        with pytest.raises(Forbidden):
            tuning.set_repeat(session, editor(scope_of(acme)), acme.customer.id, 3600)
        with pytest.raises(NotFound):
            tuning.set_repeat(session, editor(Scope.of_reseller("other")), acme.customer.id,
                              3600)


def test_reseller_staff_set_a_customers_reminder_interval(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    staff = editor(Scope.of_reseller(acme.reseller.id))
    with db.session() as session:
        tuning.set_repeat(session, staff, acme.customer.id, 1800)
    with db.session() as session:
        assert repeat_interval(session, acme.reseller.id, acme.customer.id, 14400) == 1800
        assert tuning.repeat_interval(session, staff.scope, acme.customer.id) == 1800
        with pytest.raises(Invalid):
            tuning.set_repeat(session, staff, acme.customer.id, -1)
        tuning.set_repeat(session, staff, acme.customer.id, None)
    with db.session() as session:
        assert repeat_interval(session, acme.reseller.id, acme.customer.id, 14400) == 14400
