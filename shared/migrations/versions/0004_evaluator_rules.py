"""Evaluator rules: schedules and deadlines in job states, account states, thresholds, minimum
client versions, partition leases.

Revision ID: 0004_evaluator_rules
Revises: 0002_evaluator
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_evaluator_rules"
down_revision = "0002_evaluator"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("job_states") as batch:
        batch.add_column(sa.Column("partition", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("reseller_id", sa.String(32), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("customer_id", sa.String(32), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("job_name", sa.String(128), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("cron", sa.String(200), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("interval_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("schedule_settings", sa.JSON(), nullable=False,
                                   server_default="{}"))
        batch.add_column(sa.Column("last_activity_at", TS, nullable=True))
        batch.add_column(sa.Column("consecutive_misses", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("next_due_at", TS, nullable=True))
        batch.add_column(sa.Column("running_run_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("running_since", TS, nullable=True))
        batch.create_index("ix_job_states_partition", ["partition"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("key", sa.String(200), nullable=True))
    op.create_table(
        "account_states",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("partition", sa.Integer(), nullable=False, index=True),
        sa.Column("first_run_at", TS, nullable=True),
        sa.Column("zero_bytes_since", TS, nullable=True),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "evaluator_thresholds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("scope", "scope_id", "name"),
    )
    op.create_table(
        "client_min_versions",
        sa.Column("client_name", sa.String(100), primary_key=True),
        sa.Column("min_version", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "evaluator_leases",
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "evaluator_members",
        sa.Column("replica_id", sa.String(100), primary_key=True),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("evaluator_members", "evaluator_leases", "client_min_versions",
                  "evaluator_thresholds", "account_states"):
        op.drop_table(table)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("key")
    with op.batch_alter_table("job_states") as batch:
        batch.drop_index("ix_job_states_partition")
        for column in ("running_since", "running_run_id", "next_due_at", "consecutive_misses",
                       "last_activity_at", "schedule_settings", "interval_seconds", "timezone",
                       "cron", "job_name", "customer_id", "reseller_id", "partition"):
            batch.drop_column(column)
