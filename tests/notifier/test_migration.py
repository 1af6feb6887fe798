"""Migration 0005 goes up and down on both backends."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from shared.db import MIGRATIONS_DIR, Database


def test_upgrade_and_downgrade(db: Database):
    tables = set(inspect(db.engine).get_table_names())
    assert {"notify_transitions", "webhook_endpoints", "silences", "brands"} <= tables
    columns = {c["name"] for c in inspect(db.engine).get_columns("notifications")}
    assert {"lease_until", "lease_owner", "group_key", "dead_at", "transition"} <= columns
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    command.downgrade(cfg, "0003_notifier")
    db.engine.dispose()
    inspector = inspect(db.engine)
    assert "webhook_endpoints" not in inspector.get_table_names()
    assert "lease_until" not in {c["name"] for c in inspector.get_columns("notifications")}
    db.upgrade()
