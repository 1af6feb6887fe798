"""Executor: applied plans and targets; executions, activity executions, tasks, their files
and the facts plugins reported.

Revision ID: 0010_executor
Revises: 0001_tenancy
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_executor"
down_revision = "0001_tenancy"
branch_labels = ("executor",)
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "executor_plans",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("reseller_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=False, index=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        _when("applied_at", nullable=False),
    )
    op.create_table(
        "executor_targets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        _when("applied_at", nullable=False),
    )
    op.create_table(
        "executor_plan_executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("plan", sa.String(128), nullable=False),
        sa.Column("reseller_id", sa.String(32), nullable=False, index=True),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("runner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        _when("status_at"),
        _when("queued_at", nullable=False),
        _when("started_at"),
        _when("finished_at"),
        *(sa.Column(n, sa.Integer(), nullable=False)
          for n in ("targets", "items", "succeeded", "failed", "skipped")),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("scripts", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
    )
    op.create_index("ix_executor_plan_executions_plan_queued", "executor_plan_executions",
                    ["plan", "queued_at"])
    op.create_table(
        "executor_activity_executions",
        sa.Column("execution_id", sa.String(32), primary_key=True),
        sa.Column("activity", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("target_pattern", sa.String(255), nullable=False),
        sa.Column("item_pattern", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _when("status_at"),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in ("succeeded", "failed", "skipped")),
    )
    op.create_table(
        "executor_tasks",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("execution_id", sa.String(32), nullable=False),
        sa.Column("activity", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("item", sa.String(1000), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("status_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        _when("started_at"),
        _when("finished_at"),
        sa.Column("files_transferred", sa.BigInteger(), nullable=False),
        sa.Column("transfer_errors", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("scripts", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
    )
    op.create_index("ix_executor_tasks_execution_sequence", "executor_tasks",
                    ["execution_id", "sequence"])
    op.create_table(
        "executor_task_files",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(48), nullable=False, index=True),
        sa.Column("execution_id", sa.String(32), nullable=False, index=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(200), nullable=True),
    )
    op.create_table(
        "executor_target_facts",
        sa.Column("task_id", sa.String(48), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("execution_id", sa.String(32), nullable=False, index=True),
        sa.Column("target", sa.String(255), nullable=False, index=True),
        sa.Column("value", sa.Text(), nullable=False),
        _when("observed_at", nullable=False),
    )


def downgrade() -> None:
    for table in ("executor_target_facts", "executor_task_files", "executor_tasks",
                  "executor_activity_executions", "executor_plan_executions",
                  "executor_targets", "executor_plans"):
        op.drop_table(table)
