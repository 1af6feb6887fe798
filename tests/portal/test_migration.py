"""Migration 0008_history goes up and down on both backends, and matches the table models."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from services.portal.history.tables import HistoryDayCell, HistoryRun, HistoryUsageDay
from shared.db import MIGRATIONS_DIR, Database, core_table

TABLES = {"history_runs", "history_day_cells", "history_usage_days"}


def test_upgrade_and_downgrade(db: Database) -> None:
    inspector = inspect(db.engine)
    assert TABLES <= set(inspector.get_table_names())
    for model in (HistoryRun, HistoryDayCell, HistoryUsageDay):
        table = core_table(model)
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys())
        assert {i["name"] for i in inspector.get_indexes(table.name)} >= {
            i.name for i in table.indexes}
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    command.downgrade(cfg, "history@base")
    db.engine.dispose()
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.upgrade()
    db.engine.dispose()
    assert TABLES <= set(inspect(db.engine).get_table_names())
