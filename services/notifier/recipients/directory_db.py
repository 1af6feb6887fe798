"""The embedded default directory: the account's contacts as stored with the account (read
through a short cache: a changed contact list takes effect within ``ttl`` seconds)."""

from __future__ import annotations

from sqlmodel import Session

from services.notifier.errors import RecipientNotFound
from services.notifier.lane import LANE
from shared.db import Database
from shared.tenancy import Account, AccountPath
from shared.ttlcache import TtlCache


class DatabaseDirectory:
    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self._db = db
        self._cache: TtlCache[str, list[str] | None] = TtlCache(ttl)

    async def customer_addresses(self, account: AccountPath) -> list[str]:
        def contacts(session: Session) -> list[str] | None:
            row = session.get(Account, account.account_id)
            return list(row.contacts) if row is not None else None

        fresh, found = self._cache.peek(account.account_id)
        if not fresh:
            found = await self._db.run(contacts, LANE)
            self._cache.put(account.account_id, found)
        if found is None:
            raise RecipientNotFound(account.account_id)
        return list(found)
