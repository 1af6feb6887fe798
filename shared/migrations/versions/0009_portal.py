"""Portal: its users (roles, scope, read-only) and the colour of each reseller's pages.

Revision ID: 0009_portal
Revises: 0001_tenancy
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_portal"
down_revision = "0001_tenancy"
branch_labels = ("portal",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("reseller_id", sa.String(32), nullable=True, index=True),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS, nullable=True),
    )
    op.create_table(
        "portal_brands",
        sa.Column("reseller_id", sa.String(32), primary_key=True),
        sa.Column("colour", sa.String(7), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("portal_brands")
    op.drop_table("portal_users")
