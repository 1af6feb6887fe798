"""Partition leases on both backends: fair shares, hand-over, expiry, and the fence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from services.evaluator.leases import LeaseLost, Leases
from services.evaluator.tables import EvaluatorMember, PartitionLease
from shared.db import Database

TTL = timedelta(seconds=30)


def test_replicas_share_partitions_without_overlap(db: Database) -> None:
    one, two = Leases("one", 16, TTL), Leases("two", 16, TTL)
    with db.session() as s:
        assert one.renew(s) == set(range(16))  # alone: everything
    with db.session() as s:
        assert two.renew(s) == set()  # all taken; but now two members
    with db.session() as s:
        held = one.held(s)
        surplus = one.surplus(s, held)
        assert len(surplus) == 8
        one.release(s, surplus)
    with db.session() as s:
        got = two.renew(s)
    with db.session() as s:
        mine = one.renew(s)
    assert len(got) == 8 and len(mine) == 8 and not got & mine


def test_expired_leases_are_taken_over_and_the_old_owner_is_fenced(db: Database) -> None:
    one, two = Leases("one", 4, TTL), Leases("two", 4, TTL)
    with db.session() as s:
        one.renew(s)
        one.check(s, 0)
    with db.session() as s:  # "one" stops renewing: its leases and membership lapse
        past = datetime.now(UTC) - TTL
        s.execute(update(PartitionLease).values(expires_at=past))
        s.execute(update(EvaluatorMember).where(col(EvaluatorMember.replica_id) == "one")
                  .values(expires_at=past))
    with db.session() as s:
        assert two.renew(s) == {0, 1, 2, 3}
    with db.session() as s, pytest.raises(LeaseLost):
        one.check(s, 0)


def test_leave_hands_everything_back(db: Database) -> None:
    one, two = Leases("one", 4, TTL), Leases("two", 4, TTL)
    with db.session() as s:
        one.renew(s)
    with db.session() as s:
        one.leave(s)
    with db.session() as s:
        assert two.renew(s) == {0, 1, 2, 3}
