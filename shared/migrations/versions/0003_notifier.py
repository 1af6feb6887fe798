"""Notifier: the notification log (also the delivery queue) and delivery attempts.

Revision ID: 0003_notifier
Revises: 0001_tenancy
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_notifier"
down_revision = "0001_tenancy"
branch_labels = ("notifier",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False, index=True),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("alert", sa.JSON(), nullable=False),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer(), sa.ForeignKey("notifications.id"),
                  nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("notifications")
