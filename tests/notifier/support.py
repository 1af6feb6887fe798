"""Helpers shared by the notifier tests: alerts, a settable clock, a wired notifier."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from services.notifier.channels.targets import TargetPolicy
from services.notifier.channels.webhooks import WebhookSender
from services.notifier.queue.backoff import Schedule
from services.notifier.recipients.directory_db import DatabaseDirectory
from services.notifier.recipients.receivers import Directory
from services.notifier.service import (
    Notifier,
    dispatch_options,
    pipeline,
    policy_options,
    schedule_of,
)
from shared.clock import FakeClock
from shared.config import NotifierSettings
from shared.db import Database
from shared.events import AlertChanged, Tenant
from shared.secretbox import SecretBox, new_key

KEY = new_key()
KEYS = SecretBox([KEY])
# The test receivers listen on 127.0.0.1: allowed explicitly, as an on-premises one would be.
LOCAL_NETWORKS = "127.0.0.0/8,::1/128"
LOCAL = TargetPolicy.parse(LOCAL_NETWORKS)

_seq = itertools.count(1)


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


def schedule(**changes: float) -> Schedule:
    """The settings' retry schedule with ``changes``."""
    return replace(schedule_of(NotifierSettings()), **changes)


def make_notifier(
    db: Database, *, clock: FakeClock | None = None, mailer: Any = None,
    directory: Directory | None = None, repeat: float = 0.0, group_window: float = 0.0,
    schedule: Schedule | None = None, lease: float = 60.0, public_url: str = "https://bs.test",
    concurrency: int = 32, inline: bool = True, replica: str = "",
) -> Notifier:
    settings = NotifierSettings(
        public_url=public_url, lease_seconds=lease, delivery_concurrency=concurrency,
        repeat_interval_seconds=repeat, group_window_seconds=group_window)
    dispatch = replace(dispatch_options(settings), replica_id=replica)
    if schedule is not None:
        dispatch = replace(dispatch, schedule=schedule)
    return pipeline(db, directory or DatabaseDirectory(db), mailer or MemoryMailer(),
                    WebhookSender(timeout=2.0, keys=KEYS, policy=LOCAL),
                    replace(policy_options(settings), inline=inline), dispatch,
                    clock or FakeClock())


async def settle(notifier: Notifier) -> None:
    """Plan and deliver everything due now."""
    await notifier.drain()
    while await notifier.plan_due():
        await notifier.dispatcher.drain()
    while await notifier.dispatcher.deliver_due():
        pass
