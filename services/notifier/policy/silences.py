"""Silences (maintenance windows): no notifications for an account or customer while active."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from services.notifier.tables import Silence
from shared.events import Tenant


def covers(silence: Silence, tenant: Tenant, at: datetime) -> bool:
    """A silence names a reseller, optionally narrowed to a customer and an account."""
    return (
        silence.starts_at <= at < silence.ends_at
        and silence.reseller_id == tenant.reseller
        and silence.customer_id in (None, tenant.customer)
        and silence.account_id in (None, tenant.account)
    )


def active_for(session: Session, tenant: Tenant, at: datetime) -> list[Silence]:
    rows = session.exec(
        select(Silence).where(Silence.reseller_id == tenant.reseller, Silence.ends_at > at)
    ).all()
    return [s for s in rows if covers(s, tenant, at)]


def add(
    session: Session, *, reseller_id: str, starts_at: datetime, ends_at: datetime,
    customer_id: str | None = None, account_id: str | None = None, reason: str = "",
) -> Silence:
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    silence = Silence(
        id=uuid.uuid4().hex[:16], reseller_id=reseller_id, customer_id=customer_id,
        account_id=account_id, starts_at=starts_at, ends_at=ends_at, reason=reason,
    )
    session.add(silence)
    return silence


def listing(session: Session, *, include_expired: bool, at: datetime) -> list[Silence]:
    query = select(Silence).order_by(col(Silence.starts_at))
    if not include_expired:
        query = query.where(Silence.ends_at > at)
    return list(session.exec(query).all())
