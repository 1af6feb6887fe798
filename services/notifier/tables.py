"""The notifier's tables.

* ``notify_transitions`` — every alert transition (and reminder) the notifier accepted: the inbox
  the planner works through, and where a suppression is recorded with its reason.
* ``notifications`` — one row per transition and receiver: the notification log (its unique key
  makes a second plan of the same transition a no-op) and the durable delivery queue.
* ``delivery_attempts`` — every attempt, successful or not.
* ``alert_notify_state`` — per alert: current state, last notified, count, next reminder.
* configuration: ``webhook_endpoints``, ``brands``, ``notify_settings``, ``silences``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime
from shared.events import utcnow


class NotifyTransition(SQLModel, table=True):
    __tablename__ = "notify_transitions"

    id: int | None = Field(default=None, primary_key=True)
    # fingerprint:sequence, or fingerprint:sequence:rN for the n-th reminder.
    key: str = Field(unique=True, max_length=200)
    fingerprint: str = Field(index=True, max_length=64)
    sequence: int
    transition: str = Field(max_length=16)  # firing | resolved | reminder
    account_id: str = Field(index=True, max_length=32)
    customer_id: str = Field(max_length=32)
    reseller_id: str = Field(max_length=32)
    alert: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # NULL until recipients were resolved and the notifications planned.
    planned_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    plan_after: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    plan_attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    suppressed_reason: str | None = Field(default=None, max_length=200)


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"

    id: int | None = Field(default=None, primary_key=True)
    # fingerprint:sequence[:rN]:channel:target — the idempotency key of one delivery.
    key: str = Field(unique=True, max_length=400)
    fingerprint: str = Field(index=True, max_length=64)
    sequence: int
    account_id: str = Field(index=True, max_length=32)
    channel: str = Field(max_length=16)  # email | webhook
    target: str = Field(max_length=300)  # address, or webhook endpoint id
    status: str = Field(default="pending", index=True, max_length=16)  # pending|sent|dead
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    alert: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    transition: str = Field(default="firing", max_length=16)
    reseller_id: str | None = Field(default=None, max_length=32)
    customer_id: str | None = Field(default=None, max_length=32)
    # E-mails of one customer and address planned within the group window go out as one.
    group_key: str | None = Field(default=None, max_length=400, index=True)
    # A replica delivering the row holds it until then; a crashed one's lease simply expires.
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    lease_owner: str | None = Field(default=None, max_length=32)
    dead_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt, successful or not: time, channel, target, status, error."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notifications.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status: str = Field(max_length=16)  # sent | retry | dead
    error: str | None = Field(default=None, max_length=2000)
    channel: str | None = Field(default=None, max_length=16)
    target: str | None = Field(default=None, max_length=300)
    http_status: int | None = None
    duration_ms: float | None = None


class AlertNotifyState(SQLModel, table=True):
    __tablename__ = "alert_notify_state"

    fingerprint: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(index=True, max_length=32)
    customer_id: str = Field(max_length=32)
    reseller_id: str = Field(max_length=32)
    kind: str = Field(max_length=64)
    job: str | None = Field(default=None, max_length=128)
    state: str = Field(max_length=16)
    sequence: int
    alert: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Whether anyone heard about the current firing: a resolve is sent only then.
    firing_notified: bool = False
    last_notified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    notification_count: int = 0
    reminders_sent: int = 0
    next_reminder_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=32)
    reseller_id: str = Field(index=True, max_length=32)
    customer_id: str | None = Field(default=None, index=True, max_length=32)
    url: str = Field(max_length=2000)
    format: str = Field(max_length=16)  # backstop | alertmanager | pagerduty
    # backstop: the whsec_ signing secret; pagerduty: the routing key. Sealed (shared.secretbox).
    secret: str | None = Field(default=None, max_length=1000)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BrandRow(SQLModel, table=True):
    __tablename__ = "brands"

    reseller_id: str = Field(primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    logo_url: str | None = Field(default=None, max_length=2000)
    sender: str | None = Field(default=None, max_length=300)
    footer: str | None = Field(default=None, max_length=2000)


class NotifySettings(SQLModel, table=True):
    """Per reseller (customer_id empty) or per customer: who is always told, how often."""

    __tablename__ = "notify_settings"
    __table_args__ = (UniqueConstraint("reseller_id", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    reseller_id: str = Field(max_length=32)
    customer_id: str = Field(default="", max_length=32)  # "" = the reseller itself
    contacts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    repeat_interval_seconds: float | None = None


class Silence(SQLModel, table=True):
    """A maintenance window: no notifications for the matching tenant while active."""

    __tablename__ = "silences"

    id: str = Field(primary_key=True, max_length=32)
    reseller_id: str = Field(index=True, max_length=32)
    customer_id: str | None = Field(default=None, max_length=32)
    account_id: str | None = Field(default=None, max_length=32)
    starts_at: datetime = Field(sa_type=UtcDateTime)
    ends_at: datetime = Field(sa_type=UtcDateTime, index=True)
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
