"""``command.run``: any script as a backup (the INPE VM-image style of job).

The script runs on the executor's machine (it reaches the target itself, e.g. with the ssh
command given in ``BACKSTOP_SSH``) with the task's variables in its environment and writes its
files into ``BACKSTOP_OUTPUT``; whatever it wrote there is the backup (paths, sizes, SHA-256).
Exit status > 0 fails the task. Verification: every file recorded still exists with its size,
at least one file was written (unless ``allow_empty``), and each ``expect`` glob matches one.

Optional quiesce commands make this the plugin for any system with a "freeze" and a "thaw":
``quiesce`` asks, ``quiesced`` answers (exit 0: quiesced), ``unquiesce`` releases.
"""

from __future__ import annotations

import asyncio
import fnmatch
import shlex
from pathlib import Path

from pydantic import Field

from services.executor.plugins.api import (
    Action,
    ActionOptions,
    BackupFailed,
    BackupResult,
    QuiesceFailed,
    TaskContext,
    Verification,
    VerificationFailed,
)
from services.executor.plugins.folders import FolderPlugin, files_in_background
from services.executor.plugins.process import CommandNotFound, CommandTimedOut, Completed


class CommandOptions(ActionOptions):
    script: str | list[str] = Field(
        description="A shell command line (run by /bin/sh -c), or an argv list (no shell).")
    env: dict[str, str] = Field(default_factory=dict,
                                description="More environment variables for every command.")
    expect: list[str] = Field(default_factory=list,
                              description="Globs (relative to the output folder) that must "
                              "each match a written file.")
    allow_empty: bool = Field(False, description="A run that writes no file still verifies.")
    checksums: bool = Field(True, description="Record each written file's SHA-256.")
    quiesce: str | list[str] | None = None
    unquiesce: str | list[str] | None = None
    quiesced: str | list[str] | None = Field(
        None, description="Exits 0 when the target is quiesced (default: quiesce succeeded).")
    quiesce_timeout: float = Field(60.0, gt=0, description="Seconds each quiesce command "
                                   "may take.")


def _argv(command: str | list[str]) -> list[str]:
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


def _key(ctx: TaskContext) -> tuple[str, str]:
    return ctx.target.name, ctx.item.name


class CommandPlugin(FolderPlugin):
    name = "command"
    summary = "Runs a script; the files it writes into its output folder are the backup."
    actions = (Action(name="run", summary="Run a script with the task's variables; collect "
                      "the files it writes.", options=CommandOptions),)
    quiesces = True

    def __init__(self) -> None:
        self._frozen: set[tuple[str, str]] = set()  # quiesced by this process, no `quiesced`

    def options_of(self, ctx: TaskContext) -> CommandOptions:
        options = self.options(ctx.action, ctx.options)
        assert isinstance(options, CommandOptions)
        return options

    def _env(self, ctx: TaskContext, options: CommandOptions) -> dict[str, str]:
        env = {
            "BACKSTOP_OUTPUT": str(ctx.output),
            "BACKSTOP_DESTINATION": str(ctx.destination),
            "BACKSTOP_TARGET": ctx.target.name,
            "BACKSTOP_TARGET_ADDRESS": ctx.target.address,
            "BACKSTOP_ITEM": ctx.item.name,
            "BACKSTOP_ACTION": ctx.action,
        }
        if not ctx.target.is_local:
            env["BACKSTOP_SSH"] = shlex.join([*ctx.target.ssh_argv(), ctx.target.login])
        return {**env, **options.env}

    async def _run(self, ctx: TaskContext, command: str | list[str], *,
                   timeout: float | None) -> Completed:
        options = self.options_of(ctx)
        return await ctx.run(_argv(command), timeout=timeout, env=self._env(ctx, options),
                             cwd=ctx.output if ctx.output.is_dir() else None)

    async def backup(self, ctx: TaskContext) -> BackupResult:
        options = self.options_of(ctx)
        ctx.output.mkdir(parents=True, exist_ok=True)
        try:
            done = await self._run(ctx, options.script, timeout=options.timeout)
        except CommandTimedOut as exc:
            result = await self._collect(ctx, options, exc.stdout + exc.stderr)
            raise BackupFailed(str(exc), result) from None
        except CommandNotFound as exc:
            raise BackupFailed(str(exc)) from None
        result = await self._collect(ctx, options, _log(done))
        if not done.ok:
            raise BackupFailed(f"the script exited with {done.returncode}: {done.tail(5)}",
                               result)
        return result

    async def _collect(self, ctx: TaskContext, options: CommandOptions,
                       log: str) -> BackupResult:
        files = await files_in_background(ctx.output, checksums=options.checksums)
        size = sum(f.size or 0 for f in files)
        return BackupResult(files=files, files_transferred=len(files), bytes=size,
                            total_bytes=size, location=str(ctx.output), log=log)

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        options = self.options_of(ctx)
        problems = await asyncio.to_thread(_check_files, ctx.output, result, options)
        if problems:
            raise VerificationFailed("; ".join(problems[:5]) + (
                f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""), problems)
        return Verification(method="existence and size", checked=len(result.files))

    async def quiesce(self, ctx: TaskContext) -> None:
        options = self.options_of(ctx)
        if options.quiesce is None:
            raise QuiesceFailed("command.run has no quiesce command in its options")
        await self._quiesce_step(ctx, options.quiesce, "quiesce", options.quiesce_timeout)
        self._frozen.add(_key(ctx))

    async def unquiesce(self, ctx: TaskContext) -> None:
        options = self.options_of(ctx)
        if options.unquiesce is None:
            raise QuiesceFailed("command.run has no unquiesce command in its options")
        await self._quiesce_step(ctx, options.unquiesce, "unquiesce", options.quiesce_timeout)
        self._frozen.discard(_key(ctx))

    async def is_quiesced(self, ctx: TaskContext) -> bool:
        options = self.options_of(ctx)
        if options.quiesced is None:
            # No command to ask: quiesced from a successful quiesce until the unquiesce (the
            # executor asks before quiescing and polls after each step).
            return _key(ctx) in self._frozen
        try:
            done = await self._run(ctx, options.quiesced, timeout=options.quiesce_timeout)
        except (CommandTimedOut, CommandNotFound) as exc:
            raise QuiesceFailed(f"quiesced: {exc}") from None
        return done.ok

    async def _quiesce_step(self, ctx: TaskContext, command: str | list[str], what: str,
                            timeout: float) -> None:
        try:
            done = await self._run(ctx, command, timeout=timeout)
        except (CommandTimedOut, CommandNotFound) as exc:
            raise QuiesceFailed(f"{what}: {exc}") from None
        if not done.ok:
            raise QuiesceFailed(f"{what} exited with {done.returncode}: {done.tail(5)}")


def _log(done: Completed) -> str:
    if done.stderr and done.stdout:
        return f"{done.stdout}\n--- stderr ---\n{done.stderr}"
    return done.stdout or done.stderr


def _check_files(output: Path, result: BackupResult, options: CommandOptions) -> list[str]:
    problems: list[str] = []
    if not result.files and not options.allow_empty:
        problems.append(f"the script wrote no file into {output}")
    for entry in result.files:
        path = output / entry.path
        if not path.is_file():
            problems.append(f"{entry.path} is missing")
        elif entry.size is not None and path.stat().st_size != entry.size:
            problems.append(f"{entry.path} has {path.stat().st_size} bytes, "
                            f"{entry.size} were written")
    for pattern in options.expect:
        if not any(fnmatch.fnmatch(entry.path, pattern) for entry in result.files):
            problems.append(f"no file matching {pattern} was written")
    return problems

