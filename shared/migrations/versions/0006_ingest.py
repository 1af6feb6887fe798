"""Ingest: the last schedule uploaded per job, so an identical upload is a no-op.

Revision ID: 0006_ingest
Revises: 0001_tenancy
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_ingest"
down_revision = "0001_tenancy"
branch_labels = ("ingest",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_schedules",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("job", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_schedules")
