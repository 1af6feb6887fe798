"""Migrations 0005 and 0007 go up and down on both backends."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from shared.db import MIGRATIONS_DIR, Database
from shared.secretbox import SecretBox, new_key


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


def test_upgrade_seals_clear_secrets_and_downgrade_opens_them(db: Database):
    """An installation from before 0007 keeps its secrets, now sealed with the given key."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    command.downgrade(cfg, "0005_notifier_channels")
    db.engine.dispose()
    clear = {"e1": "whsec_" + "A" * 43 + "=", "e2": "R" * 32, "e3": None}
    with db.engine.begin() as conn:
        for endpoint_id, secret in clear.items():
            conn.execute(text(
                "INSERT INTO webhook_endpoints (id, reseller_id, url, format, secret, enabled, "
                "created_at) VALUES (:id, 'r', 'https://psa.example/h', 'backstop', :secret, "
                "true, CURRENT_TIMESTAMP)"), {"id": endpoint_id, "secret": secret})
    keys = SecretBox([new_key()])
    db.upgrade(keys=lambda: keys)

    def stored() -> dict[str, str | None]:
        with db.engine.connect() as conn:
            return dict(conn.execute(text("SELECT id, secret FROM webhook_endpoints")).all())

    sealed = stored()
    assert sealed["e3"] is None
    for endpoint_id in ("e1", "e2"):
        value = sealed[endpoint_id]
        assert value is not None and value.startswith("fernet:")
        assert keys.open(value) == clear[endpoint_id]
    db.upgrade(keys=lambda: keys)  # at head: nothing sealed twice
    assert stored() == sealed
    cfg.attributes["secret_box"] = lambda: keys
    command.downgrade(cfg, "0005_notifier_channels")
    assert stored() == clear


def test_upgrade_without_secrets_needs_no_key(db: Database, monkeypatch):
    monkeypatch.setenv("BACKSTOP_SECRET_KEYS", "not-a-key")  # would fail if it were read
    db.upgrade()
