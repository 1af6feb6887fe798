"""Notifier: webhook signing secrets and PagerDuty routing keys sealed at rest (Fernet).

The column grows to hold the sealed form; every clear value is sealed with the installation's
key (BACKSTOP_SECRET_KEYS, or the data dir's key file — see shared/secretbox.py).

Revision ID: 0007_sealed_secrets
Revises: 0005_notifier_channels
Create Date: 2026-12-01
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

from shared.secretbox import SecretBox

revision = "0007_sealed_secrets"
down_revision = "0005_notifier_channels"
branch_labels = None
depends_on = None

ENDPOINTS = sa.table("webhook_endpoints", sa.column("id", sa.String),
                     sa.column("secret", sa.String))


def _keys() -> SecretBox:
    given: Callable[[], SecretBox] | None = context.config.attributes.get("secret_box")
    if given is not None:
        return given()
    from shared.config import BaseServiceSettings
    from shared.secretbox import secret_box

    return secret_box(BaseServiceSettings())


def _rewrite(sealed: bool, change: Callable[[SecretBox, str], str]) -> None:
    """Apply ``change`` to every secret that is (or is not) ``sealed``."""
    bind = op.get_bind()
    rows = [(endpoint_id, secret) for endpoint_id, secret in bind.execute(
        sa.select(ENDPOINTS.c.id, ENDPOINTS.c.secret).where(ENDPOINTS.c.secret.is_not(None)))
        if SecretBox.is_sealed(secret) == sealed]
    if not rows:
        return  # a fresh or already sealed database needs no key
    keys = _keys()
    for endpoint_id, secret in rows:
        bind.execute(ENDPOINTS.update().where(ENDPOINTS.c.id == endpoint_id)
                     .values(secret=change(keys, secret)))


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", existing_type=sa.String(200), type_=sa.String(1000),
                           existing_nullable=True)
    _rewrite(False, lambda keys, clear: keys.seal(clear))


def downgrade() -> None:
    _rewrite(True, lambda keys, stored: keys.open(stored))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", existing_type=sa.String(1000), type_=sa.String(200),
                           existing_nullable=True)
