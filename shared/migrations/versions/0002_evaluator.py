"""Evaluator: job states, alerts and their transitions.

Revision ID: 0002_evaluator
Revises: 0001_tenancy
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_evaluator"
down_revision = "0001_tenancy"
branch_labels = ("evaluator",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_states",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_run_at", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("job", sa.String(128), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_changed", TS, nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_table(
        "alert_transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(32), sa.ForeignKey("alerts.id"), nullable=False,
                  index=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("alert_id", "sequence"),
    )


def downgrade() -> None:
    for table in ("alert_transitions", "alerts", "job_states"):
        op.drop_table(table)
