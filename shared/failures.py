"""Permanent or transient: can a consumer's failure on a message go away by trying again?

A permanent failure lies in the message itself — it does not validate, a number overflows, the
database refuses the value — so every retry gives the same answer: the message goes to the dead
letters at once and holds up nothing queued behind it. Everything else (the database or the bus
away, a timeout, a lost lease, a concurrent writer) may pass and is retried with back-off. Both
consumers of :mod:`shared.consumers` ask :func:`is_permanent`, so they always agree.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help: the message goes straight to dead letters."""


# Errors computing with the message's values (pydantic's ValidationError is a ValueError).
_IN_THE_DATA = (PermanentFailure, ArithmeticError, ValueError, TypeError)
# A unique key taken by a concurrent writer (two replicas claiming one event during a handover):
# the retry sees the winner's row. PostgreSQL's SQLSTATE and SQLite's extended error names.
_CONCURRENT_WRITE = {"23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def is_permanent(exc: BaseException) -> bool:
    """True when retrying the message cannot succeed; unknown errors count as transient."""
    if isinstance(exc, DBAPIError):
        return _refused_by_database(exc)
    if isinstance(exc, StatementError):  # raised while binding a value, before the database
        return exc.orig is not None and is_permanent(exc.orig)
    return isinstance(exc, _IN_THE_DATA)


def _refused_by_database(exc: DBAPIError) -> bool:
    if isinstance(exc, DataError):  # out of range, too long, NUL in text: the value itself
        return True
    if isinstance(exc, IntegrityError):  # a missing account, a NULL: unless it is a race
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "sqlite_errorname", None)
        return code not in _CONCURRENT_WRITE
    return False  # OperationalError and friends: the database is away, locked or restarting


def describe(exc: BaseException) -> str:
    """The cause in a line, for the dead letter's reason: the driver's error, not the SQL."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    return f"{type(cause).__name__}: {cause}"
