"""Who is calling: account tokens and ping keys resolved to an account, with a short-lived cache.

Secrets are stored only as SHA-256 digests. A lookup finds the row by digest (indexed) and then
compares the digests in constant time. The cache is keyed by digest too, so neither it nor its
timing says anything about the secret. It keeps the hot path off the database; a revoked token
stops working within ``ttl`` seconds on every replica.

Unknown secrets are remembered apart, briefly (at most ``MAX_NEGATIVE_SECONDS``), so guesses
neither reach the database twice nor push valid credentials out of their cache; and every
failure is counted against the client's address (``failed_auth.py``), whose lookups are refused
with a 429 once it has failed too often.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlmodel import Session, col, select

from services.ingest.errors import Unauthorized
from services.ingest.failed_auth import FailedAuthLimiter, client_address
from shared.credentials import digest
from shared.db import Database
from shared.events import Tenant
from shared.tenancy import Account, ApiToken
from shared.ttlcache import TtlCache

log = logging.getLogger(__name__)

# Valid credentials cached; past this many the least recently used one makes room.
MAX_CACHED = 100_000
# Unknown ones, kept apart so that guesses cannot push valid credentials out of their cache. A
# credential tried before it was issued works at most this many seconds later.
MAX_UNKNOWN = 10_000
MAX_NEGATIVE_SECONDS = 5.0


@dataclass(frozen=True)
class Caller:
    """An authenticated account. ``key`` (the credential's digest) names it for rate limiting."""

    tenant: Tenant
    quota_bytes: int | None
    key: str


class _Resolver:
    """Resolves one kind of secret through ``lookup`` (run in the database thread pool).

    Concurrent misses for one secret share a single lookup: when a busy client's cache entry
    expires, its in-flight requests would otherwise all queue for the database at once. An
    entry in use is refreshed in the background shortly before it expires, so busy clients do
    not wait for the database every ``ttl`` (every client's at once after a start); what is
    served is still at most ``ttl`` old.
    """

    def __init__(self, db: Database, ttl: float,
                 lookup: Callable[[Session, str], Account | None],
                 failures: FailedAuthLimiter | None = None) -> None:
        self._db = db
        self._known: TtlCache[str, Caller] = TtlCache(ttl, MAX_CACHED)
        self._unknown: TtlCache[str, bool] = TtlCache(min(ttl, MAX_NEGATIVE_SECONDS), MAX_UNKNOWN)
        self._lookup = lookup
        self._failures = failures or FailedAuthLimiter(rate=0, burst=1)
        self._inflight: dict[str, asyncio.Task[Caller | None]] = {}

    async def resolve(self, secret: str, client: str | None = None) -> Caller | None:
        """The secret's account, or None; ``client`` (an address) pays for failures."""
        key = digest(secret)
        fresh, cached = self._known.peek(key)
        if fresh:
            if self._known.due(key):
                self._lookup_once(key)  # not awaited: this request uses what is cached
            return cached
        self._failures.check(client)  # before the database: guesses stop here
        if self._unknown.peek(key)[0]:
            caller = None
        else:
            # shield: a client hanging up must not cancel the lookup others are waiting for.
            caller = await asyncio.shield(self._lookup_once(key))
        if caller is None:
            self._failures.failed(client)
        return caller

    def _lookup_once(self, key: str) -> asyncio.Task[Caller | None]:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: str, task: asyncio.Task[Caller | None]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # Waiters get the error themselves; a background refresh has none, and the entry
            # then simply expires and is looked up again.
            # Only the type: a database error's text carries the statement's parameters.
            log.warning("credential lookup failed: %s", type(task.exception()).__name__)

    async def _load(self, key: str) -> Caller | None:
        account = await self._db.run(lambda s: self._lookup(s, key))
        if account is None:
            self._known.discard(key)  # revoked since it was cached
            self._unknown.put(key, True)
            return None
        caller = Caller(tenant=account.tenant(), quota_bytes=account.quota_bytes, key=key)
        self._known.put(key, caller)
        return caller


def _account_by_token_digest(session: Session, key: str) -> Account | None:
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == key, col(ApiToken.revoked_at).is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, key):
        return None
    return session.get(Account, row.account_id)


def _account_by_ping_digest(session: Session, key: str) -> Account | None:
    account = session.exec(select(Account).where(Account.ping_key_hash == key)).first()
    if account is None or not hmac.compare_digest(account.ping_key_hash, key):
        return None
    return account


class TokenResolver(_Resolver):
    """``Authorization: Bearer <token>`` → the token's account."""

    def __init__(self, db: Database, ttl: float = 5.0,
                 failures: FailedAuthLimiter | None = None) -> None:
        super().__init__(db, ttl, _account_by_token_digest, failures)

    async def authenticate(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        caller = await self.resolve(token, client_address(request))
        if caller is None:
            raise Unauthorized("unknown or revoked token")
        return caller


class PingKeyResolver(_Resolver):
    """An account's ping key (the secret in ``/ping/<key>``) → the account."""

    def __init__(self, db: Database, ttl: float = 5.0,
                 failures: FailedAuthLimiter | None = None) -> None:
        super().__init__(db, ttl, _account_by_ping_digest, failures)
