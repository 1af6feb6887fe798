"""``postgres.dump``: ``pg_dump -Fc`` of each database of a PostgreSQL server.

The items of a target are its databases (``psql``: every database that is not a template and
accepts connections), so an activity's item pattern (``app_*``) picks which are dumped, one task
each; without a pattern one task dumps every database (``databases`` globs narrow that, and
``exclude`` globs leave some out). Each dump is ``<database>.dump`` in the task's output folder,
recorded with its size and SHA-256; the facts hold pg_dump's and the server's versions.

By default the tools run on the executor's machine and connect to the target's address; with
``over_ssh`` they run on the target through ssh (its local socket and peer authentication) and
the dump streams back. The password (``password_env``: an environment variable of the
executor) reaches the tools as ``PGPASSWORD``, never on a command line; it cannot travel over
ssh, so ``over_ssh`` relies on the target's own authentication.

Verification: each dump exists with the size recorded and ``pg_restore --list`` reads its table
of contents.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from services.executor.plugins import process
from services.executor.plugins.api import (
    Action,
    ActionOptions,
    BackupFailed,
    BackupResult,
    DiscoveryFailed,
    FileEntry,
    Item,
    Target,
    TargetUnreachable,
    TaskContext,
    Verification,
    VerificationFailed,
    probe_ssh,
)
from services.executor.plugins.folders import FolderPlugin, sha256_of
from services.executor.plugins.process import CommandNotFound, CommandTimedOut, Completed

_FIELD = "\x1f"  # between psql's fields (records end with NUL): neither is in a name
DATABASES = ("select datname, pg_database_size(datname) from pg_database "
             "where not datistemplate and datallowconn order by datname")


def conninfo_dbname(database: str) -> str:
    """``database`` for ``-d`` as a quoted ``dbname=`` setting: the tools read a ``-d`` that
    holds ``=`` as connection settings, so a database named ``host=… dbname=…`` would
    otherwise choose the server and database dumped (and where PGPASSWORD goes)."""
    quoted = database.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{quoted}'"


class PostgresOptions(ActionOptions):
    host: str | None = Field(None, description="Server host (default: the target's address; "
                             "with over_ssh: the target's local socket).")
    port: int = Field(5432, ge=1, le=65535)
    user: str | None = Field(None, description="Role to connect as.")
    password_env: str | None = Field(None, description="Environment variable of the executor "
                                     "holding the password.")
    maintenance_db: str = Field("postgres", description="Database to connect to when listing "
                                "databases.")
    databases: list[str] = Field(default_factory=lambda: ["*"], description="Globs of the "
                                 "databases a task without item pattern dumps.")
    exclude: list[str] = Field(default_factory=list, description="Globs of databases never "
                               "dumped.")
    over_ssh: bool = Field(False, description="Run pg_dump on the target through ssh.")
    args: list[str] = Field(default_factory=list, description="More pg_dump arguments.")

    @model_validator(mode="after")
    def _no_password_over_ssh(self) -> PostgresOptions:
        if self.over_ssh and self.password_env:
            raise ValueError("password_env cannot be used with over_ssh (the password would "
                             "travel on the target's command line); use a .pgpass there")
        return self


class PostgresPlugin(FolderPlugin):
    name = "postgres"
    summary = "pg_dump -Fc of each database matching the item pattern; verified by " \
              "pg_restore --list."
    actions = (Action(name="dump", summary="One custom-format dump per database.",
                      options=PostgresOptions),)
    discovers = True

    def _parse(self, action: str, raw: Mapping[str, Any]) -> PostgresOptions:
        options = self.options(action, raw)
        assert isinstance(options, PostgresOptions)
        return options

    def options_of(self, ctx: TaskContext) -> PostgresOptions:
        return self._parse(ctx.action, ctx.options)

    def _connection(self, target: Target, options: PostgresOptions,
                    database: str) -> list[str]:
        args = ["-p", str(options.port), "-d", conninfo_dbname(database)]
        host = options.host or (None if options.over_ssh else target.address)
        if host:
            args += ["-h", host]
        if options.user:
            args += ["-U", options.user]
        return [*args, "-w"]  # never prompt for a password

    def _env(self, options: PostgresOptions) -> dict[str, str]:
        if options.password_env is None:
            return {}
        value = os.environ.get(options.password_env)
        if not value:
            raise BackupFailed(f"the environment variable {options.password_env} (the "
                               "database password) is not set")
        return {"PGPASSWORD": value}

    async def _tool(self, target: Target, options: PostgresOptions, argv: list[str], *,
                    timeout: float | None, stdout_to: Path | None = None) -> Completed:
        if options.over_ssh:
            return await process.run(target.command(argv), timeout=timeout,
                                     stdout_to=stdout_to)
        return await process.run(argv, timeout=timeout, env=self._env(options),
                                 stdout_to=stdout_to)

    async def _query(self, target: Target, options: PostgresOptions, sql: str,
                     timeout: float | None = 30) -> list[list[str]]:
        argv = ["psql", *self._connection(target, options, options.maintenance_db),
                "-X", "-A", "-t", "-F", _FIELD, "-0", "-c", sql]
        try:
            done = await self._tool(target, options, argv, timeout=timeout)
        except CommandTimedOut as exc:
            raise TargetUnreachable(f"PostgreSQL on {target.name}: {exc}") from None
        except CommandNotFound as exc:
            raise DiscoveryFailed(str(exc)) from None
        if not done.ok:
            raise TargetUnreachable(f"PostgreSQL on {target.name} refused the query "
                                    f"(exit {done.returncode}): {done.tail(3)}")
        return [record.split(_FIELD) for record in done.stdout.split("\0") if record.strip()]

    async def probe(self, target: Target, action: str, options: Mapping[str, Any]) -> None:
        parsed = self._parse(action, options)
        if parsed.over_ssh:
            await probe_ssh(target, self.probe_timeout)
        await self._query(target, parsed, "select 1", timeout=self.probe_timeout)

    async def databases(self, target: Target, options: PostgresOptions) -> list[Item]:
        """The server's databases that may be dumped (not templates, not excluded)."""
        rows = await self._query(target, options, DATABASES)
        items = []
        for row in rows:
            name = row[0]
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in options.exclude):
                continue
            size = row[1] if len(row) > 1 else ""
            items.append(Item(name=name, facts={"size": int(size) if size.isdigit() else None}))
        return items

    async def discover(self, target: Target, action: str,
                       options: Mapping[str, Any]) -> list[Item]:
        return await self.databases(target, self._parse(action, options))

    async def backup(self, ctx: TaskContext) -> BackupResult:
        options = self.options_of(ctx)
        if ctx.item.whole:
            names = [i.name for i in await self.databases(ctx.target, options)
                     if any(fnmatch.fnmatchcase(i.name, p) for p in options.databases)]
        else:
            names = [ctx.item.name]
        ctx.output.mkdir(parents=True, exist_ok=True)
        files: list[FileEntry] = []
        errors: list[str] = []
        log: list[str] = []
        for name in names:
            dump = ctx.output / f"{Item(name=name).slug}.dump"
            argv = ["pg_dump", "-Fc", *self._connection(ctx.target, options, name),
                    *options.args]
            try:
                if options.over_ssh:
                    done = await self._tool(ctx.target, options, argv, timeout=options.timeout,
                                            stdout_to=dump)
                else:
                    done = await self._tool(ctx.target, options, [*argv, "-f", str(dump)],
                                            timeout=options.timeout)
            except (CommandTimedOut, CommandNotFound) as exc:
                errors.append(f"{name}: {exc}")
                continue
            if done.stderr:
                log.append(f"{name}: {done.stderr.strip()}")
            if not done.ok:
                errors.append(f"{name}: pg_dump exited with {done.returncode}: {done.tail(3)}")
                dump.unlink(missing_ok=True)
                continue
            files.append(FileEntry(path=dump.name, size=dump.stat().st_size,
                                   checksum=await asyncio.to_thread(sha256_of, dump)))
        size = sum(f.size or 0 for f in files)
        result = BackupResult(files=files, files_transferred=len(files), bytes=size,
                              total_bytes=size, transfer_errors=errors,
                              facts=await self._facts(ctx.target, options),
                              location=str(ctx.output), log="\n".join(log))
        if errors:
            raise BackupFailed(f"{len(errors)} of {len(names)} database(s) not dumped: "
                               f"{errors[0]}", result)
        if not names:
            raise BackupFailed("no database to dump (the databases/exclude options leave "
                               "none)", result)
        return result

    async def _facts(self, target: Target, options: PostgresOptions) -> dict[str, str]:
        facts: dict[str, str] = {}
        try:
            version = await self._tool(target, options, ["pg_dump", "--version"], timeout=30)
            facts["pg_dump_version"] = version.stdout.strip()
            rows = await self._query(target, options, "show server_version")
            facts["server_version"] = rows[0][0] if rows else "?"
        except Exception as exc:  # facts are a courtesy: never fail a dump for them
            facts["facts_error"] = str(exc)
        return facts

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        problems: list[str] = []
        for entry in result.files:
            path = ctx.output / entry.path
            if not path.is_file():
                problems.append(f"{entry.path} is missing")
                continue
            if entry.size is not None and path.stat().st_size != entry.size:
                problems.append(f"{entry.path} has {path.stat().st_size} bytes, "
                                f"{entry.size} were written")
                continue
            try:
                done = await process.run(["pg_restore", "--list", str(path)],
                                         timeout=ctx.timeout(), limit=4096)
            except (CommandTimedOut, CommandNotFound) as exc:
                problems.append(f"{entry.path}: {exc}")
                continue
            if not done.ok or not done.stdout.strip():
                problems.append(f"{entry.path}: pg_restore --list failed "
                                f"(exit {done.returncode}): {done.tail(2)}")
        if not result.files:
            problems.append("no dump was written")
        if problems:
            raise VerificationFailed("; ".join(problems[:5]), problems)
        return Verification(method="size and pg_restore --list", checked=len(result.files))
