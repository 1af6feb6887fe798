"""What every command shares: its database, how it refuses, and how it reads the durations, times
and choices operators type. Commands take these from here, never from one another; listings
print through :mod:`services.cli.tables`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta

import typer

from shared.bus import Bus
from shared.config import BaseServiceSettings, NotifierSettings
from shared.db import Database
from shared.natsd import running_url

# Options of commands that print one record (listings take tables.JSON).
JSON_OBJECT = typer.Option(False, "--json", help="Print one JSON object.")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def database() -> Database:
    """The configured database, migrated: every CLI command may be the first one run."""
    db = Database(BaseServiceSettings().sqlalchemy_url())
    db.upgrade()
    return db


@asynccontextmanager
async def bus() -> AsyncIterator[Bus]:
    """The configured NATS (``BACKSTOP_NATS_URL``), else the embedded server of the running
    ``backstop up`` on the data directory; refuses (exit 2) when neither answers."""
    settings = BaseServiceSettings()
    if settings.nats_url:
        access = settings.nats_access()
    else:
        url = running_url(settings.data_dir / "nats")
        if url is None:
            raise fail(f"no NATS: set BACKSTOP_NATS_URL, or start `backstop up` on "
                       f"{settings.data_dir}")
        settings.nats_url = url
        access = settings.nats_access()
    connection = Bus(access, name="backstop-cli")
    try:
        await connection.connect()
    except Exception as exc:
        raise fail(f"NATS did not answer ({exc.__class__.__name__}): is backstop running?") \
            from exc
    try:
        yield connection
    finally:
        await connection.close()


def warn_if_contacts_unused(contacts: list[str]) -> None:
    """Account contacts are stored, but with LDAP configured the directory names the customer
    side instead: say so rather than let the operator believe they will be mailed."""
    if contacts and NotifierSettings().ldap_url.strip():
        typer.echo("warning: BACKSTOP_LDAP_URL is set, so the directory decides who on the "
                   "customer side is told; these account contacts are kept but not used "
                   "while LDAP is configured.", err=True)


def fail(reason: object, code: int = 2) -> typer.Exit:
    """Say why on stderr; the caller raises the returned exit (status 2: the request was
    refused)."""
    typer.echo(f"error: {reason}", err=True)
    return typer.Exit(code)


@contextmanager
def refusing(*errors: type[Exception]) -> Iterator[None]:
    """Turn ``errors`` (an operator's invalid request) into :func:`fail`."""
    try:
        yield
    except errors as exc:
        raise fail(exc) from exc


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``4h``, ``2d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 30m, 4h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_since(text: str, now: datetime) -> datetime:
    """``24h``, ``30m``, ``7d`` (that long ago) or an ISO 8601 time (UTC unless it says)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except typer.BadParameter:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a time: {text!r} (e.g. 24h, 7d, 2026-11-23T02:00:00Z)") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    """``value`` when it is one of ``allowed`` (or None); ``name`` is the option's flag."""
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"{name} must be one of {', '.join(allowed)}")
    return value
