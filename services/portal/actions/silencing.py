"""Silence and un-silence from the alert log: a silence is a maintenance window of the notifier
(reseller, customer or account; the narrowest is the alert's account), made and ended through
the notifier's admin facade."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, select

from services.evaluator.tables import Alert
from services.notifier import admin
from services.notifier.tables import Silence
from services.portal.rights import Editor, Invalid, NotFound, Role
from shared.db import core_table
from shared.tenancy import Account

log = logging.getLogger("backstop.audit")
ALERTS = core_table(Alert)

Level = Literal["account", "customer"]
LEVELS: tuple[Level, ...] = ("account", "customer")
# A silence from the portal lasts at most this long: longer is a configuration, not a window.
MAX_SILENCE = timedelta(days=90)


def silence_alert(session: Session, editor: Editor, fingerprint: str, *, duration: timedelta,
                  reason: str, now: datetime, level: Level = "account") -> Silence:
    """Silence the alert's account (or its whole customer) from ``now`` for ``duration``."""
    alert = session.exec(select(Alert).where(
        Alert.fingerprint == fingerprint,
        editor.scope.where(ALERTS.c.reseller_id, ALERTS.c.customer_id))).first()
    if alert is None:
        raise NotFound(f"no alert {fingerprint!r}")
    editor.require(Role.customer, alert.reseller_id, alert.customer_id)
    if level not in LEVELS:
        raise Invalid(f"silence level must be one of {', '.join(LEVELS)}")
    if not timedelta(0) < duration <= MAX_SILENCE:
        raise Invalid(f"a silence lasts more than 0 s and at most {MAX_SILENCE.days} days")
    try:
        row = admin.add_silence(
            session, reseller_id=alert.reseller_id, customer_id=alert.customer_id,
            account_id=alert.account_id if level == "account" else None,
            starts_at=now, ends_at=now + duration, reason=reason.strip()[:500])
    except admin.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("silence added", extra={"actor": editor.actor, "silence_id": row.id,
                                     "reseller_id": row.reseller_id,
                                     "customer_id": row.customer_id,
                                     "account_id": row.account_id,
                                     "ends_at": row.ends_at.isoformat()})
    return row


def end_silence(session: Session, editor: Editor, silence_id: str, now: datetime) -> Silence:
    """Un-silence: end the silence now. Needs the right at the silence's own level (a
    reseller-wide silence needs reseller staff)."""
    row = session.get(Silence, silence_id)
    if row is None:
        raise NotFound(f"no silence {silence_id!r}")
    customer_id = row.customer_id
    if customer_id is None and row.account_id is not None:
        account = session.get(Account, row.account_id)
        customer_id = account.customer_id if account else None
    lowest = Role.reseller if customer_id is None else Role.customer
    editor.require(lowest, row.reseller_id, customer_id)
    ended = admin.end_silence(session, silence_id, now)
    log.info("silence ended", extra={"actor": editor.actor, "silence_id": silence_id})
    return ended
