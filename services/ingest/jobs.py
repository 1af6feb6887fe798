"""Jobs as ingest sees them: created on first report, found by slug for pings.

A job never disappears once reported, so the set of jobs known to exist is cached per process
and the hot path writes to the database only on a job's very first report.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.ingest.errors import PingBadRequest
from shared.db import Database
from shared.events import Tenant
from shared.tenancy import InvalidName, Job, check_job_name, get_or_create_job

MAX_KNOWN = 200_000


class Jobs:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: set[tuple[str, str]] = set()

    async def ensure(self, tenant: Tenant, name: str) -> None:
        """Make sure ``name`` exists for the account (so it can be pinged by slug later)."""
        key = (tenant.account, name)
        if key in self._known:
            return
        try:
            await self._db.run(lambda s: get_or_create_job(s, tenant.account, name))
        except IntegrityError:
            pass  # another request created it at the same moment: it exists, which is the point
        self._remember(key)

    async def exists(self, tenant: Tenant, name: str) -> bool:
        key = (tenant.account, name)
        if key in self._known:
            return True
        found = await self._db.run(lambda s: _find(s, tenant.account, name))
        if found:
            self._remember(key)
        return found

    def _remember(self, key: tuple[str, str]) -> None:
        if len(self._known) >= MAX_KNOWN:
            self._known.clear()
        self._known.add(key)


def check_slug(slug: str) -> str:
    """A job name usable in a ping URL; lower case only, as Healthchecks requires of slugs."""
    try:
        check_job_name(slug)
    except InvalidName as exc:
        raise PingBadRequest("invalid url format") from exc
    if slug != slug.lower():
        raise PingBadRequest("invalid url format")
    return slug


def _find(session: Session, account_id: str, name: str) -> bool:
    row = session.exec(select(Job.id).where(Job.account_id == account_id, Job.name == name)).first()
    return row is not None
