"""The database: SQLModel over SQLite (embedded default) or PostgreSQL, schema by Alembic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import CursorResult, DateTime, Executable, Table, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine, select

from shared.private_files import private_dir, private_file

if TYPE_CHECKING:
    from shared.secretbox import SecretBox

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything in Backstop is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands them back naive otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return aware(value) if value is not None else None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and "?" not in path:
            _private_sqlite_files(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _private_sqlite_files(path: Path) -> None:
    """The database file made 0600 before SQLite creates it: its -wal and -shm files take the
    database file's mode."""
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            private_file(companion)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; the services share one file in embedded mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@dataclass(frozen=True)
class Lane:
    """Threads of their own for one kind of database work (see :meth:`Database.run`).

    The event loop's default pool is shared by every service in the process (a handful of
    threads): many short units of work queue behind the others' and, on SQLite, fight for the
    single write lock (the busy handler then sleeps up to 100 ms a time). One thread on SQLite
    serialises them without that.
    """

    name: str
    postgres: int = 1
    sqlite: int = 1


def _sqlite_write_heavy_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Bigger page cache and rarer WAL checkpoints: a checkpoint copies each page once however
    often it changed in between."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA cache_size=-32768")  # KiB: 32 MiB instead of 2
    cursor.execute("PRAGMA wal_autocheckpoint=16384")  # pages: 64 MiB instead of 4
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends cleanly, rolled back otherwise."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run(self, work: Callable[[Session], T], lane: Lane | None = None) -> T:
        """Run blocking database work in a thread so the event loop keeps serving: the
        lane's own threads, or the event loop's default pool."""

        def in_session() -> T:
            with self.session() as session:
                return work(session)

        if lane is None:
            return await asyncio.to_thread(in_session)
        return await asyncio.get_running_loop().run_in_executor(self._threads(lane), in_session)

    def _threads(self, lane: Lane) -> ThreadPoolExecutor:
        pool = self._lanes.get(lane.name)
        if pool is None:
            count = lane.sqlite if self.url.startswith("sqlite") else lane.postgres
            pool = ThreadPoolExecutor(count, thread_name_prefix=lane.name)
            self._lanes[lane.name] = pool
        return pool

    def favour_writes(self) -> None:
        """Tune SQLite for write-heavy work (the evaluator's); nothing on PostgreSQL."""
        if self.engine.dialect.name != "sqlite":
            return
        if not event.contains(self.engine, "connect", _sqlite_write_heavy_pragmas):
            event.listen(self.engine, "connect", _sqlite_write_heavy_pragmas)
            self.engine.dispose()  # connections made before now get the pragmas when re-opened

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def upgrade(self, keys: Callable[[], SecretBox] | None = None) -> None:
        upgrade(self.url, keys)

    def dispose(self) -> None:
        for pool in self._lanes.values():
            pool.shutdown(wait=False)
        self._lanes.clear()
        self.engine.dispose()


def upgrade(url: str, keys: Callable[[], SecretBox] | None = None) -> None:
    """Bring the schema to the newest revision of every migration branch.

    ``keys`` gives the :class:`~shared.secretbox.SecretBox` a migration sealing stored secrets
    needs (called only then); default: the one the environment's settings name.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    if keys is not None:
        cfg.attributes["secret_box"] = keys
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "heads")


# --- Core statements on table models -----------------------------------------------------------
# Bulk inserts, executemany updates and plain-row selects skip the ORM where its cost would exceed
# the work; SQLModel leaves the Core side untyped, these give it types.


@cache
def core_table(model: type[SQLModel]) -> Table:
    """The Core table of a table model."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def rowcount(session: Session, statement: Executable) -> int:
    """Execute an INSERT, UPDATE or DELETE; returns how many rows it matched."""
    return int(cast("CursorResult[Any]", session.execute(statement)).rowcount or 0)


__all__ = ["Database", "Lane", "aware", "core_table", "rowcount", "select", "upgrade"]
