"""What a caller may see: every tenant, one reseller's customers, or one customer's accounts.

Every read of tenant data (portal pages, the JSON API, the CLI on a user's behalf) filters by a
scope **in the query**, so an id from another tenant matches no row and reads as "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, true
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Scope:
    reseller_id: str | None = None
    customer_id: str | None = None

    def __post_init__(self) -> None:
        if self.customer_id is not None and self.reseller_id is None:
            raise ValueError("a customer scope names its reseller too")

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def of_reseller(cls, reseller_id: str) -> Scope:
        return cls(reseller_id=reseller_id)

    @classmethod
    def of_customer(cls, reseller_id: str, customer_id: str) -> Scope:
        return cls(reseller_id=reseller_id, customer_id=customer_id)

    @property
    def is_everything(self) -> bool:
        return self.reseller_id is None

    def admits(self, reseller_id: str, customer_id: str) -> bool:
        """True when a row of this reseller and customer is visible in the scope."""
        if self.reseller_id is not None and reseller_id != self.reseller_id:
            return False
        return self.customer_id is None or customer_id == self.customer_id

    def where(self, reseller_column: ColumnElement[str],
              customer_column: ColumnElement[str]) -> ColumnElement[bool]:
        """The SQL condition that keeps only this scope's rows (for a table's tenant columns)."""
        conditions: list[ColumnElement[bool]] = []
        if self.reseller_id is not None:
            conditions.append(reseller_column == self.reseller_id)
        if self.customer_id is not None:
            conditions.append(customer_column == self.customer_id)
        return and_(true(), *conditions)
