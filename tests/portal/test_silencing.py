"""Silence and un-silence from the alert log, through the notifier's facade: the right role,
never for read-only users, never for another tenant's alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifier.policy.silences import active_for
from services.portal.actions import silencing
from services.portal.queries import alert_log
from services.portal.rights import Invalid, NotFound, ReadOnly
from shared.db import Database
from shared.scopes import Scope
from tests.portal.support import FIRED_AT as AT
from tests.portal.support import add_alert, editor, scope_of
from tests.support import make_account


def test_a_customer_user_silences_their_alerts_account_and_ends_it(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    fp = add_alert(db, acme, at=AT)
    with db.session() as session:
        row = silencing.silence_alert(session, editor(scope_of(acme)), fp,
                                      duration=timedelta(hours=2), reason="maintenance", now=AT)
        silence_id = row.id
    with db.session() as session:
        assert [s.id for s in active_for(session, acme.account.tenant(), AT)] == [silence_id]
        listed = alert_log.active_silences(session, scope_of(acme), AT)
        assert [(s.account_id, s.reason) for s in listed] == [(acme.account.id, "maintenance")]
        silencing.end_silence(session, editor(scope_of(acme)), silence_id,
                              AT + timedelta(minutes=5))
    with db.session() as session:
        assert active_for(session, acme.account.tenant(), AT + timedelta(minutes=6)) == []


def test_read_only_users_and_other_tenants_cannot_silence(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    globex = make_account(db, reseller="MSP", customer="Globex")
    fp = add_alert(db, acme, at=AT)
    with db.session() as session:
        with pytest.raises(ReadOnly):
            silencing.silence_alert(session, editor(scope_of(acme), read_only=True), fp,
                                    duration=timedelta(hours=1), reason="", now=AT)
        with pytest.raises(NotFound):
            silencing.silence_alert(session, editor(scope_of(globex)), fp,
                                    duration=timedelta(hours=1), reason="", now=AT)
        with pytest.raises(Invalid):
            silencing.silence_alert(session, editor(scope_of(acme)), fp,
                                    duration=timedelta(days=365), reason="", now=AT)
        row = silencing.silence_alert(session, editor(Scope.of_reseller(acme.reseller.id)), fp,
                                      duration=timedelta(hours=1), reason="", now=AT,
                                      level="customer")
        assert (row.customer_id, row.account_id) == (acme.customer.id, None)
        with pytest.raises(NotFound):
            silencing.end_silence(session, editor(scope_of(globex)), row.id, AT)
        assert alert_log.active_silences(session, scope_of(globex), AT) == []


def test_a_reseller_wide_silence_is_ended_by_reseller_staff_only(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    from services.notifier import admin

    with db.session() as session:
        row = admin.add_silence(session, reseller_id=acme.reseller.id, customer_id=None,
                                account_id=None, starts_at=AT, ends_at=AT + timedelta(hours=1))
        silence_id = row.id
    with db.session() as session:
        # Visible to the customer (it covers them), but not theirs to end.
        assert [s.id for s in alert_log.active_silences(session, scope_of(acme), AT)] == [
            silence_id]
        with pytest.raises(NotFound):
            silencing.end_silence(session, editor(scope_of(acme)), silence_id, AT)
        silencing.end_silence(session, editor(Scope.of_reseller(acme.reseller.id)), silence_id,
                              AT)
