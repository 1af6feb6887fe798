"""The postgres plugin: real psql, pg_dump and pg_restore against the test PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from services.executor.plugins import process
from services.executor.plugins.api import (
    BadOptions,
    Target,
    TargetUnreachable,
    VerificationFailed,
    items_for,
)
from services.executor.plugins.postgres import PostgresPlugin
from shared.natsd import free_port
from tests.executor.support import Sshd, context

pytestmark = pytest.mark.postgres
plugin = PostgresPlugin()


@pytest.fixture
def server(postgres_url: str) -> tuple[Target, dict[str, Any], str]:
    """The test server as a target, its connection options, and a fresh database with rows."""
    url = make_url(postgres_url)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as conn:
        conn.execute("create table backups (id int primary key, name text)")
        conn.execute("insert into backups select g, 'row ' || g from generate_series(1, 500) g")
    options = {"port": url.port or 5432, "user": url.username or "postgres"}
    return Target(name="db-1", address=url.host or "127.0.0.1"), options, str(url.database)


async def test_databases_are_discovered_by_pattern(
        server: tuple[Target, dict[str, Any], str]) -> None:
    target, options, database = server
    await plugin.probe(target, "postgres.dump", options)

    found = await items_for(plugin, target, "postgres.dump", database, options)

    assert [i.name for i in found] == [database]
    assert found[0].facts["size"] > 0
    assert await items_for(plugin, target, "postgres.dump", f"{database}_nope*", options) == []
    assert database not in [i.name for i in await items_for(
        plugin, target, "postgres.dump", "backstop_test_*", {**options, "exclude": [database]})]


async def test_a_dump_is_written_recorded_and_verified(
        tmp_path: Path, server: tuple[Target, dict[str, Any], str]) -> None:
    target, options, database = server
    ctx = context("postgres.dump", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  target=target, item=database, **options)

    result = await plugin.backup(ctx)

    assert [f.path for f in result.files] == [f"{database}.dump"]
    dump = ctx.output / f"{database}.dump"
    entry = result.files[0]
    assert entry.size == dump.stat().st_size > 0 and entry.checksum
    assert entry.checksum.startswith("sha256:")
    assert result.facts["pg_dump_version"].startswith("pg_dump (PostgreSQL)")
    assert result.facts["server_version"][:2].isdigit()
    toc = (await process.run(["pg_restore", "--list", str(dump)])).stdout
    assert "TABLE DATA public backups" in toc
    assert (await plugin.verify(ctx, result)).checked == 1

    dump.write_bytes(dump.read_bytes()[: entry.size // 2])
    with pytest.raises(VerificationFailed, match="bytes"):
        await plugin.verify(ctx, result)
    dump.write_bytes(b"PGDMP but not really" + b"\0" * (entry.size - 20))
    with pytest.raises(VerificationFailed, match="pg_restore --list failed"):
        await plugin.verify(ctx, result)


async def test_the_whole_target_dumps_each_selected_database(
        tmp_path: Path, server: tuple[Target, dict[str, Any], str]) -> None:
    target, options, database = server
    ctx = context("postgres.dump", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  target=target, databases=[database, "postgres"], **options)
    result = await plugin.backup(ctx)
    assert sorted(f.path for f in result.files) == sorted([f"{database}.dump",
                                                           "postgres.dump"])
    await plugin.verify(ctx, result)


async def test_a_server_that_does_not_answer_is_unreachable(tmp_path: Path) -> None:
    target = Target(name="db-down", address="127.0.0.1")
    options = {"port": free_port(), "user": "postgres"}
    with pytest.raises(TargetUnreachable, match="db-down"):
        await plugin.probe(target, "postgres.dump", options)
    with pytest.raises(TargetUnreachable):
        await items_for(plugin, target, "postgres.dump", "*", options)


def test_a_password_cannot_travel_over_ssh() -> None:
    with pytest.raises(BadOptions, match="password_env cannot be used with over_ssh"):
        plugin.options("postgres.dump", {"over_ssh": True, "password_env": "PGPASS"})


async def test_over_ssh_the_dump_runs_on_the_target_and_streams_back(
        tmp_path: Path, server: tuple[Target, dict[str, Any], str], sshd: Sshd) -> None:
    _, options, database = server
    target = sshd.target("db-remote")
    remote = {**options, "over_ssh": True, "host": "127.0.0.1"}
    await plugin.probe(target, "postgres.dump", remote)
    ctx = context("postgres.dump", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  target=target, item=database, **remote)
    result = await plugin.backup(ctx)
    assert result.files[0].size and result.files[0].size > 1000
    await plugin.verify(ctx, result)


async def test_a_database_name_is_never_read_as_connection_settings(
        tmp_path: Path, server: tuple[Target, dict[str, Any], str], postgres_url: str) -> None:
    """pg_dump reads a ``-d`` holding ``=`` as a connection string: a database named
    ``dbname=<another>`` must dump itself, not the other database (nor reach another host)."""
    target, options, database = server
    odd = f"dbname={database}"
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'create database "{odd}"')
    try:
        ctx = context("postgres.dump", tmp_path / "series" / "2026-11-30-22-00-00-000",
                      target=target, item=odd, **options)

        result = await plugin.backup(ctx)

        toc = (await process.run(["pg_restore", "--list", str(ctx.output / result.files[0].path)]
                                 )).stdout
        assert "TABLE DATA public backups" not in toc
        assert f"dbname: {odd}" in toc
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False),
                             autocommit=True) as conn:
            conn.execute(f'drop database "{odd}"')
