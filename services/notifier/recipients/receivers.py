"""Who is told: the customer side from a pluggable directory, the reseller side (and every
webhook) as configured in the database, whatever the customer's own setting says."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session, col, or_, select

from services.notifier.errors import RecipientNotFound
from services.notifier.tables import NotifySettings, WebhookEndpoint
from shared.tenancy import AccountPath

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Receiver:
    channel: str  # email | webhook
    target: str  # e-mail address, or webhook endpoint id


class Directory(Protocol):
    """Where the customer-side addresses come from (database or LDAP).

    Raises :class:`RecipientNotFound` when the account has no entry, and
    :class:`~services.notifier.errors.DirectoryUnavailable` when it cannot answer now.
    """

    async def customer_addresses(self, account: AccountPath) -> list[str]: ...


@dataclass(frozen=True)
class Configured:
    """Receivers configured in the database for an account's reseller and customer."""

    reseller_contacts: list[str] = field(default_factory=list)
    customer_contacts: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)


def configured(session: Session, ref: AccountPath) -> Configured:
    settings = session.exec(
        select(NotifySettings).where(
            NotifySettings.reseller_id == ref.reseller_id,
            col(NotifySettings.customer_id).in_(["", ref.customer_id]),
        )
    ).all()
    hooks = session.exec(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.reseller_id == ref.reseller_id,
            col(WebhookEndpoint.enabled).is_(True),
            or_(col(WebhookEndpoint.customer_id).is_(None),
                WebhookEndpoint.customer_id == ref.customer_id),
        )
    ).all()
    return Configured(
        reseller_contacts=[c for s in settings if s.customer_id == "" for c in s.contacts],
        customer_contacts=[c for s in settings if s.customer_id != "" for c in s.contacts],
        webhooks=list(hooks),
    )


async def resolve(directory: Directory, ref: AccountPath, config: Configured) -> list[Receiver]:
    """All receivers of one account's alerts, deduplicated and sorted (stable keys)."""
    try:
        customer_side = await directory.customer_addresses(ref)
    except RecipientNotFound as exc:
        log.info("no directory entry for account %s: %s", ref.account_id, exc)
        customer_side = []
    return receivers_of(config, customer_side)


def receivers_of(config: Configured, customer_side: list[str] | None = None) -> list[Receiver]:
    """The configured receivers plus the directory's addresses; without the directory's
    answer, the part that needs no directory (told even while it is down)."""
    addresses = {a.strip().lower() for a in
                 [*(customer_side or []), *config.customer_contacts, *config.reseller_contacts]}
    receivers = {Receiver("email", a) for a in addresses if a}
    receivers |= {Receiver("webhook", w) for w in config.webhooks}
    return sorted(receivers)
