"""Helpers shared by the notifier tests: alerts, a settable clock, a wired notifier."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from services.notifier.channels.targets import TargetPolicy
from services.notifier.channels.webhooks import WebhookSender
from services.notifier.queue.backoff import Schedule
from services.notifier.queue.dispatch import Dispatcher, DispatchOptions
from services.notifier.recipients.directory_db import DatabaseDirectory
from services.notifier.recipients.receivers import Directory
from services.notifier.service import Notifier, PolicyOptions
from shared.db import Database
from shared.events import AlertChanged, Tenant
from shared.secretbox import SecretBox, new_key

KEY = new_key()
KEYS = SecretBox([KEY])
# The test receivers listen on 127.0.0.1: allowed explicitly, as an on-premises one would be.
LOCAL_NETWORKS = "127.0.0.0/8,::1/128"
LOCAL = TargetPolicy.parse(LOCAL_NETWORKS)

_seq = itertools.count(1)


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryMailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def alert(tenant: Tenant, *, kind: str = "failed_run", state: str = "firing", sequence: int = 1,
          job: str | None = "nightly", fingerprint: str | None = None,
          summary: str = "Backup job nightly failed", at: datetime | None = None,
          **extra: Any) -> AlertChanged:
    at = at or datetime.now(UTC)
    fp = fingerprint or f"fp{next(_seq):030d}"
    return AlertChanged(
        event_id=f"{fp}-{sequence}", tenant=tenant, fingerprint=fp, kind=kind, state=state,
        severity="error", sequence=sequence, job=job, summary=summary, first_seen=at,
        last_changed=at, **extra,
    )


def make_notifier(
    db: Database, *, clock: Clock | None = None, mailer: Any = None,
    directory: Directory | None = None, repeat: float = 0.0, group_window: float = 0.0,
    schedule: Schedule | None = None, lease: float = 60.0, public_url: str = "https://bs.test",
    concurrency: int = 32, inline: bool = True, replica: str = "",
) -> Notifier:
    clock = clock or Clock()
    options = DispatchOptions(public_url=public_url, schedule=schedule or Schedule(),
                              lease_seconds=lease, concurrency=concurrency, replica_id=replica)
    dispatcher = Dispatcher(db, mailer or MemoryMailer(),
                            WebhookSender(timeout=2.0, keys=KEYS, policy=LOCAL), options,
                            clock=clock)
    return Notifier(db, directory or DatabaseDirectory(db), dispatcher,
                    PolicyOptions(repeat, group_window, inline), clock=clock)


async def settle(notifier: Notifier) -> None:
    """Plan and deliver everything due now."""
    await notifier.drain()
    while await notifier.plan_due():
        await notifier.dispatcher.drain()
    while await notifier.dispatcher.deliver_due():
        pass
