"""API keys on SQLite and PostgreSQL: stored as digests, acting as their user, revoked at once,
gone with their user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from services.portal import api_keys, users
from services.portal.tables import PortalApiKey
from services.portal.users import Role
from shared.db import Database
from shared.events import utcnow


def test_a_key_is_stored_as_a_digest_and_acts_as_its_user(db: Database) -> None:
    with db.session() as session:
        users.add(session, "op@example.com", Role.operator, "correct horse battery")
        issued = api_keys.create(session, "OP@example.com", "grafana")
    with db.session() as session:
        [row] = session.exec(select(PortalApiKey)).all()
        assert issued.secret not in (row.key_hash, row.hint) and len(row.key_hash) == 64
        assert issued.secret.startswith(row.hint)
        user = api_keys.user_of(session, issued.secret)
        assert user is not None and user.email == "op@example.com"
        assert api_keys.user_of(session, issued.secret + "x") is None
        assert api_keys.user_of(session, "bst_not-a-portal-key") is None


def test_last_use_is_written_at_most_once_a_minute(db: Database) -> None:
    now = utcnow()
    with db.session() as session:
        users.add(session, "op@example.com", Role.operator, "correct horse battery")
        secret = api_keys.create(session, "op@example.com", "grafana").secret
    for at in (now, now + timedelta(seconds=30), now + timedelta(seconds=61)):
        with db.session() as session:
            api_keys.user_of(session, secret, at)
    with db.session() as session:
        [(key, _)] = api_keys.listing(session)
    assert key.last_used_at == now + timedelta(seconds=61)


def test_revoked_and_orphaned_keys_stop(db: Database) -> None:
    with db.session() as session:
        for email in ("a@example.com", "b@example.com"):
            users.add(session, email, Role.operator, "correct horse battery")
        first = api_keys.create(session, "a@example.com", "one")
        second = api_keys.create(session, "b@example.com", "two")
    with db.session() as session:
        api_keys.revoke(session, first.key.id)
        with pytest.raises(api_keys.ApiKeyError):
            api_keys.revoke(session, "no-such-key")
    with db.session() as session:
        assert api_keys.user_of(session, first.secret) is None
        assert [k.name for k, _ in api_keys.listing(session)] == ["two"]
        assert [k.name for k, _ in api_keys.listing(session, include_revoked=True)] == [
            "one", "two"]
        users.remove(session, "b@example.com")
    with db.session() as session:
        assert api_keys.user_of(session, second.secret) is None
        assert [k.name for k, _ in api_keys.listing(session, include_revoked=True)] == ["one"]


@pytest.mark.parametrize("name", ["", " ", "x" * 101, "evil\x1b[2J"])
def test_a_key_needs_a_plain_name(db: Database, name: str) -> None:
    with db.session() as session:
        users.add(session, "op@example.com", Role.operator, "correct horse battery")
        with pytest.raises(api_keys.ApiKeyError):
            api_keys.create(session, "op@example.com", name)
