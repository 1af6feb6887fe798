"""The notifier's threads for database work: its many short units of work neither queue behind
the other services' nor fight each other for SQLite's one write lock (see
:class:`shared.db.Lane`); PostgreSQL gets a few."""

from shared.db import Lane

LANE = Lane("notifier-db", postgres=8, sqlite=1)
