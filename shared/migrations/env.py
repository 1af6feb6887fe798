"""Alembic environment: migrations run from code (`backstop db upgrade`), never from a CLI ini."""

from __future__ import annotations

import importlib

from alembic import context
from sqlmodel import SQLModel

from shared.db import make_engine

# Table modules, so `alembic revision --autogenerate` sees every table.
TABLE_MODULES = [
    "shared.processed",
    "shared.tenancy",
    "shared.outbox",
    "services.evaluator.tables",
    "services.notifier.tables",
    "services.ingest.tables",
    "services.portal.tables",
    "services.portal.history.tables",
]
for module in TABLE_MODULES:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        pass

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
