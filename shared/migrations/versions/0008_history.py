"""Portal: the run history (runs, day cells per job, usage per account and day).

Revision ID: 0008_history
Revises: 0001_tenancy
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_history"
down_revision = "0001_tenancy"
branch_labels = ("history",)
depends_on = None

TS = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "history_runs",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("run_key", sa.String(210), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=True),
        sa.Column("files_transferred", sa.BigInteger(), nullable=True),
        sa.Column("error_count", sa.BigInteger(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("log_excerpt", sa.Text(), nullable=True),
        sa.Column("client_name", sa.String(100), nullable=True),
        sa.Column("client_version", sa.String(100), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("reported_at", TS, nullable=False),
        sa.UniqueConstraint("job_id", "run_key", name="uq_history_runs_job_run_key"),
    )
    op.create_index("ix_history_runs_job_at", "history_runs", ["job_id", "at", "id"])
    op.create_index("ix_history_runs_at", "history_runs", ["at"])
    op.create_table(
        "history_day_cells",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("bytes_transferred", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_history_day_cells_account_day", "history_day_cells",
                    ["account_id", "day"])
    op.create_index("ix_history_day_cells_day", "history_day_cells", ["day"])
    op.create_table(
        "history_usage_days",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("reseller_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("bytes_used", sa.BigInteger(), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("reported_at", TS, nullable=False),
    )
    op.create_index("ix_history_usage_days_reseller_day", "history_usage_days",
                    ["reseller_id", "day"])
    op.create_index("ix_history_usage_days_day", "history_usage_days", ["day"])


def downgrade() -> None:
    for table in ("history_usage_days", "history_day_cells", "history_runs"):
        op.drop_table(table)
