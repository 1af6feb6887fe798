"""Notifier: transitions inbox, per-alert notify state, webhooks, brands, settings, silences;
delivery leases, grouping and dead-letter columns.

Revision ID: 0005_notifier_channels
Revises: 0003_notifier
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_notifier_channels"
down_revision = "0003_notifier"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("planned_at", TS, nullable=True, index=True),
        sa.Column("plan_after", TS, nullable=False),
        sa.Column("plan_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("suppressed_reason", sa.String(200), nullable=True),
    )
    op.create_table(
        "alert_notify_state",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("job", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=False),
        sa.Column("firing_notified", sa.Boolean(), nullable=False),
        sa.Column("last_notified_at", TS, nullable=True),
        sa.Column("notification_count", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("next_reminder_at", TS, nullable=True, index=True),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("reseller_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=True, index=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "brands",
        sa.Column("reseller_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("logo_url", sa.String(2000), nullable=True),
        sa.Column("sender", sa.String(300), nullable=True),
        sa.Column("footer", sa.String(2000), nullable=True),
    )
    op.create_table(
        "notify_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("repeat_interval_seconds", sa.Float(), nullable=True),
        sa.UniqueConstraint("reseller_id", "customer_id"),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("reseller_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("account_id", sa.String(32), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False, index=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("transition", sa.String(16), nullable=False,
                                   server_default="firing"))
        batch.add_column(sa.Column("reseller_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("customer_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("group_key", sa.String(400), nullable=True))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(32), nullable=True))
        batch.add_column(sa.Column("dead_at", TS, nullable=True))
        batch.create_index("ix_notifications_group_key", ["group_key"])
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.add_column(sa.Column("channel", sa.String(16), nullable=True))
        batch.add_column(sa.Column("target", sa.String(300), nullable=True))
        batch.add_column(sa.Column("http_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duration_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch:
        for name in ("duration_ms", "http_status", "target", "channel"):
            batch.drop_column(name)
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_group_key")
        for name in ("dead_at", "lease_owner", "lease_until", "group_key", "customer_id",
                     "reseller_id",
                     "transition"):
            batch.drop_column(name)
    for table in ("silences", "notify_settings", "brands", "webhook_endpoints",
                  "alert_notify_state", "notify_transitions"):
        op.drop_table(table)
