"""A page of a listing: what the CLI, the portal's pages and its API all page through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, select

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` from ``offset`` on, out of ``total`` matching; ``limit`` 0 means all."""

    items: list[T]
    total: int
    offset: int
    limit: int = 0


def fetch_page(session: Session, query: Any, limit: int, offset: int) -> Page[Any]:
    """At most ``limit`` rows (0: all) of ``query`` from ``offset`` on, and how many match."""
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = session.exec(query.limit(limit or None).offset(offset)).all()
    return Page(list(rows), int(total), offset, limit)
