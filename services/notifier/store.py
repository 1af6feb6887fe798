"""The notifier's way to the database: its own worker threads.

``Database.run`` uses the event loop's default pool, shared by every service in the process
(a handful of threads); the notifier's many short units of work would queue behind the other
services' and, on SQLite, fight each other for the single write lock (SQLite's busy handler
then sleeps up to 100 ms a time). One thread on SQLite serialises them without that; PostgreSQL
gets a few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlmodel import Session

from shared.db import Database

T = TypeVar("T")


class Store:
    def __init__(self, db: Database, workers: int | None = None) -> None:
        self.db = db
        self.url = db.url
        count = workers or (1 if db.url.startswith("sqlite") else 8)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="notifier-db")

    async def run(self, work: Callable[[Session], T]) -> T:
        def in_session() -> T:
            with self.db.session() as session:
                return work(session)

        return await asyncio.get_running_loop().run_in_executor(self._pool, in_session)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
