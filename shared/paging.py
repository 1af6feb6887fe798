"""A page of a listing: what the CLI, the portal's pages and its API all page through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` from ``offset`` on, out of ``total`` matching; ``limit`` 0 means all."""

    items: list[T]
    total: int
    offset: int
    limit: int = 0
