"""Webhooks, contacts and branding from the portal: through the notifier's facade, for the
roles allowed, scoped in the query."""

from __future__ import annotations

import pytest

from services.notifier.channels.targets import TargetPolicy
from services.portal.actions import notify_settings
from services.portal.rights import Invalid, NotFound, ReadOnly
from shared.db import Database
from shared.scopes import Scope
from shared.secretbox import SecretBox
from tests.portal.support import editor, scope_of
from tests.support import make_account


def _keys() -> SecretBox:
    from cryptography.fernet import Fernet

    return SecretBox([Fernet.generate_key().decode()])


def test_customer_users_manage_their_customers_webhooks_only(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    globex = make_account(db, reseller="MSP", customer="Globex")
    user = editor(scope_of(acme))
    staff = editor(Scope.of_reseller(acme.reseller.id))
    with db.session() as session:
        mine = notify_settings.add_webhook(
            session, user, reseller_id=acme.reseller.id, customer_id=acme.customer.id,
            url="https://tickets.acme.example/hook", fmt="backstop", secret=None, keys=_keys(),
            targets=TargetPolicy())
        assert mine.generated_secret
        with pytest.raises(NotFound):  # reseller-wide: not the customer's
            notify_settings.add_webhook(
                session, user, reseller_id=acme.reseller.id, customer_id=None,
                url="https://tickets.example/hook", fmt="backstop", secret=None, keys=_keys(),
                targets=TargetPolicy())
        with pytest.raises(NotFound):
            notify_settings.add_webhook(
                session, user, reseller_id=acme.reseller.id, customer_id=globex.customer.id,
                url="https://tickets.example/hook", fmt="backstop", secret=None, keys=_keys(),
                targets=TargetPolicy())
        with pytest.raises(Invalid):
            notify_settings.add_webhook(
                session, user, reseller_id=acme.reseller.id, customer_id=acme.customer.id,
                url="http://127.0.0.1/hook", fmt="backstop", secret=None, keys=_keys(),
                targets=TargetPolicy())
        notify_settings.add_webhook(
            session, staff, reseller_id=acme.reseller.id, customer_id=None,
            url="https://psa.msp.example/hook", fmt="alertmanager", secret=None, keys=_keys(),
            targets=TargetPolicy())
    with db.session() as session:
        assert [w.url for w in notify_settings.webhooks(session, user.scope)] == [
            "https://tickets.acme.example/hook"]
        assert len(notify_settings.webhooks(session, staff.scope)) == 2
        assert notify_settings.webhooks(session, scope_of(globex)) == []
        with pytest.raises(NotFound):
            notify_settings.remove_webhook(session, editor(scope_of(globex)),
                                           mine.endpoint.id)
        with pytest.raises(ReadOnly):
            notify_settings.remove_webhook(session, editor(scope_of(acme), read_only=True),
                                           mine.endpoint.id)
        notify_settings.remove_webhook(session, user, mine.endpoint.id)
    with db.session() as session:
        assert notify_settings.webhooks(session, user.scope) == []


def test_contacts_and_branding(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    other = make_account(db, reseller="Other", customer="Initech")
    user = editor(scope_of(acme))
    staff = editor(Scope.of_reseller(acme.reseller.id))
    with db.session() as session:
        notify_settings.set_contacts(session, user, reseller_id=acme.reseller.id,
                                     customer_id=acme.customer.id,
                                     emails=["ops@acme.example", " "])
        with pytest.raises(Invalid):
            notify_settings.set_contacts(session, user, reseller_id=acme.reseller.id,
                                         customer_id=acme.customer.id, emails=["not an address"])
        with pytest.raises(NotFound):
            notify_settings.set_contacts(session, user, reseller_id=acme.reseller.id,
                                         customer_id=None, emails=["x@msp.example"])
        with pytest.raises(NotFound):
            notify_settings.set_brand(session, user, acme.reseller.id, name="Acme", sender="",
                                      logo_url="", footer="")
        with pytest.raises(ReadOnly):
            notify_settings.set_brand(session, editor(staff.scope, read_only=True),
                                      acme.reseller.id, name="X", sender="", logo_url="",
                                      footer="")
        with pytest.raises(Invalid):
            notify_settings.set_brand(session, staff, acme.reseller.id, name="MSP",
                                      sender="", logo_url="javascript:alert(1)", footer="")
        with pytest.raises(NotFound):
            notify_settings.set_brand(session, staff, other.reseller.id, name="Mine",
                                      sender="", logo_url="", footer="")
        notify_settings.set_brand(session, staff, acme.reseller.id, name="My MSP",
                                  sender="alerts@msp.example",
                                  logo_url="https://msp.example/logo.png", footer="")
    with db.session() as session:
        assert [(c.customer_id, c.contacts) for c in notify_settings.contacts(
            session, user.scope)] == [(acme.customer.id, ["ops@acme.example"])]
        assert notify_settings.contacts(session, scope_of(other)) == []
        brand = notify_settings.brand(session, staff.scope, acme.reseller.id)
        assert (brand.name, brand.sender, brand.footer) == ("My MSP", "alerts@msp.example", None)
        with pytest.raises(NotFound):
            notify_settings.brand(session, staff.scope, other.reseller.id)
