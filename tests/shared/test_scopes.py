"""Scopes: the one tenant filter every read applies, in Python and in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import column, select, table

from shared.scopes import Scope

ROWS = table("rows", column("reseller_id"), column("customer_id"))


def test_everything_admits_every_tenant() -> None:
    assert Scope.everything().admits("r1", "c1")
    assert Scope.everything().is_everything


def test_a_reseller_sees_only_its_customers() -> None:
    scope = Scope.of_reseller("r1")
    assert scope.admits("r1", "c1") and scope.admits("r1", "c2")
    assert not scope.admits("r2", "c1")


def test_a_customer_sees_only_itself() -> None:
    scope = Scope.of_customer("r1", "c1")
    assert scope.admits("r1", "c1")
    assert not scope.admits("r1", "c2") and not scope.admits("r2", "c1")


def test_a_customer_scope_needs_its_reseller() -> None:
    with pytest.raises(ValueError):
        Scope(customer_id="c1")


def test_the_sql_condition_names_the_scope_columns() -> None:
    query = select(ROWS).where(Scope.of_customer("r1", "c1").where(ROWS.c.reseller_id,
                                                                    ROWS.c.customer_id))
    compiled = query.compile(compile_kwargs={"literal_binds": True})
    assert "rows.reseller_id = 'r1'" in str(compiled)
    assert "rows.customer_id = 'c1'" in str(compiled)
    everything = select(ROWS).where(Scope.everything().where(ROWS.c.reseller_id,
                                                              ROWS.c.customer_id))
    assert "reseller_id =" not in str(everything.compile())
