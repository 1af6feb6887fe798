"""``restic.backup``: a snapshot of paths of the target into a restic repository.

restic runs where the data is: on this machine for a local target, on the target through ssh
otherwise (restic must be installed there; the repository is named as the target sees it).
The password comes from an environment variable of the executor (``password_env``) or a file on
the executor's machine (``password_file``); it reaches restic through ``RESTIC_PASSWORD``
locally and on stdin over ssh, never on a command line, in a log or in an error.

Results come from ``--json -vv``: one ``verbose_status`` line per file (new, changed or
unchanged, with its size) and the ``summary`` line (bytes, snapshot id). Exit 3 (snapshot made,
some files unreadable) fails the task with those files' errors unless ``partial_ok``.
Verification: the snapshot is listed by ``restic snapshots``, then ``restic check`` (judged by
its exit status; its output is text even with ``--json``), optionally reading back a subset of
the data. Retention: ``restic forget --keep-*`` on this target's snapshots of these paths
(``--prune`` if asked), run after the backup so the new snapshot is one of those counted; the ids
it removed are reported. restic runs with ``TZ`` set to the plan's time zone: snapshot times are
recorded in it, and ``forget`` counts days, weeks and months in it, as for folder backups.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from services.executor.plugins import process
from services.executor.plugins.api import (
    Action,
    ActionOptions,
    BackupFailed,
    BackupResult,
    BadOptions,
    FileEntry,
    Plugin,
    PluginError,
    RetentionFailed,
    RetentionPolicy,
    RetentionResult,
    TargetUnreachable,
    TaskContext,
    Verification,
    VerificationFailed,
)
from services.executor.plugins.process import CommandNotFound, CommandTimedOut, Completed

RESTIC = "restic"
PARTIAL = 3
TAG = "backstop"
SSH_FAILED = 255


class ResticOptions(ActionOptions):
    repository: str = Field(description="The repository, as restic on the target names it.")
    paths: list[str] = Field(default_factory=list, description="What to back up (default: "
                             "the item's name, when the activity has an item pattern).")
    password_env: str | None = Field(None, description="Environment variable of the executor "
                                     "that holds the repository's password.")
    password_file: Path | None = Field(None, description="File on the executor's machine "
                                       "holding the password.")
    tags: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    partial_ok: bool = Field(False, description="Unreadable files (exit 3) do not fail the "
                             "task.")
    read_data_subset: str | None = Field(None, description="restic check "
                                         "--read-data-subset (e.g. 5%): read data back.")
    prune: bool = Field(False, description="Prune the repository after forget.")

    @model_validator(mode="after")
    def _one_password_source(self) -> ResticOptions:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env and password_file")
        return self


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of restic's output (status lines, file lines, summary); other lines
    (warnings on stderr mixed in) are skipped."""
    messages = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def files_of(messages: list[dict[str, Any]]) -> list[FileEntry]:
    """The files of a backup from its ``verbose_status`` lines (folders left out)."""
    files = []
    for message in messages:
        if message.get("message_type") != "verbose_status":
            continue
        item = str(message.get("item", ""))
        if not item or item.endswith("/"):
            continue
        files.append(FileEntry(path=item, size=message.get("data_size"),
                               transferred=message.get("action") in ("new", "modified",
                                                                    "changed")))
    return files


def errors_of(messages: list[dict[str, Any]]) -> list[str]:
    """restic's per-file errors (``message_type: error``)."""
    found = []
    for message in messages:
        if message.get("message_type") == "error":
            error = message.get("error")
            text = error.get("message") if isinstance(error, dict) else error
            found.append(f"{message.get('item') or '?'}: {text or message}")
    return found


class ResticPlugin(Plugin):
    name = "restic"
    summary = "Snapshots paths into a restic repository; restic check; forget --keep-*."
    actions = (Action(name="backup", summary="restic backup --json of the paths, verified by "
                      "restic check, retained by restic forget.", options=ResticOptions),)

    def options_of(self, ctx: TaskContext) -> ResticOptions:
        options = self.options(ctx.action, ctx.options)
        assert isinstance(options, ResticOptions)
        return options

    def _password(self, options: ResticOptions) -> str:
        if options.password_env is not None:
            value = os.environ.get(options.password_env)
            if not value:
                raise BackupFailed(f"the environment variable {options.password_env} (the "
                                   "repository's password) is not set")
            return value
        assert options.password_file is not None
        try:
            return options.password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise BackupFailed(f"cannot read the password file {options.password_file}: "
                               f"{exc.strerror}") from None

    async def _restic(self, ctx: TaskContext, args: list[str], *, what: str,
                      timeout: float | None = None, on_line: Any = None,
                      limit: int = process.OUTPUT_LIMIT) -> Completed:
        """Run restic on the target with the password given the safe way, in the plan's time
        zone (a snapshot's time is recorded in it, and ``forget`` counts days in it)."""
        options = self.options_of(ctx)
        password = self._password(options)
        argv = [RESTIC, "-r", options.repository, *args]
        try:
            if ctx.target.is_local:
                return await ctx.run(argv, env={"RESTIC_PASSWORD": password,
                                                "TZ": ctx.timezone},
                                     timeout=timeout, on_line=on_line, limit=limit)
            # restic reads the password from stdin when stdin is not a terminal.
            return await ctx.run(ctx.target.command(["env", f"TZ={ctx.timezone}", *argv]),
                                 stdin=f"{password}\n".encode(),
                                 timeout=timeout, on_line=on_line, limit=limit)
        except (CommandTimedOut, CommandNotFound) as exc:
            raise BackupFailed(f"{what}: {exc}") from None

    async def _checked(self, ctx: TaskContext, args: list[str], *, what: str,
                       timeout: float | None, error: type[PluginError]) -> Completed:
        """Run restic where any failure (it could not run, or exited non-zero) makes the step
        fail with ``error`` (verification, retention)."""
        try:
            done = await self._restic(ctx, args, what=what, timeout=timeout)
        except BackupFailed as exc:
            raise error(exc.reason) from None
        if not done.ok:
            raise error(f"{what} failed (exit {done.returncode}): {done.tail(5)}")
        return done

    def _paths(self, ctx: TaskContext, options: ResticOptions) -> list[str]:
        paths = options.paths or ([] if ctx.item.whole else [ctx.item.name])
        if not paths:
            raise BadOptions("restic.backup needs paths (or an item pattern naming them)")
        return paths

    def _unreachable(self, ctx: TaskContext, done: Completed) -> None:
        if not ctx.target.is_local and done.returncode == SSH_FAILED:
            raise TargetUnreachable(f"ssh to {ctx.target.login} failed: {done.tail(3)}")

    async def backup(self, ctx: TaskContext) -> BackupResult:
        options = self.options_of(ctx)
        paths = self._paths(ctx, options)
        args = ["backup", "--json", "-vv", "--host", ctx.target.name, "--tag", TAG]
        for tag in options.tags:
            args += ["--tag", tag]
        for pattern in options.exclude:
            args += ["--exclude", pattern]
        messages: list[dict[str, Any]] = []

        def take(line: str) -> None:
            if '"verbose_status"' in line or '"summary"' in line or '"error"' in line:
                messages.extend(parse_json_lines(line))

        done = await self._restic(ctx, [*args, "--", *paths], what="restic backup",
                                  timeout=options.timeout, on_line=take)
        self._unreachable(ctx, done)
        summary = next((m for m in reversed(messages) if m.get("message_type") == "summary"),
                       None)
        facts = await self._facts(ctx)
        result = BackupResult(files=files_of(messages), transfer_errors=errors_of(messages),
                              facts=facts, log=done.stderr)
        if summary is not None:
            snapshot = str(summary.get("snapshot_id", ""))
            result = result.model_copy(update={
                "files_transferred": int(summary.get("files_new", 0))
                + int(summary.get("files_changed", 0)),
                "bytes": int(summary.get("data_added", 0)),
                "total_bytes": summary.get("total_bytes_processed"),
                "location": f"restic snapshot {snapshot}",
                "facts": {**facts, "snapshot_id": snapshot},
            })
        if done.returncode == PARTIAL and options.partial_ok and summary is not None:
            return result
        if done.returncode != 0 or summary is None:
            what = ("some files could not be read" if done.returncode == PARTIAL
                    else "restic backup failed")
            raise BackupFailed(f"{what} (exit {done.returncode}): {done.tail(5)}", result)
        return result

    async def _facts(self, ctx: TaskContext) -> dict[str, str]:
        try:
            done = await process.run(ctx.target.command(
                ["sh", "-c", "uname -srm; restic version"]), timeout=30)
        except (CommandTimedOut, CommandNotFound):
            return {}
        lines = done.stdout.splitlines()
        return {"host_os": lines[0] if lines else "?",
                "restic_version": lines[1] if len(lines) > 1 else "?"}

    async def snapshots(self, ctx: TaskContext, *ids: str) -> list[dict[str, Any]]:
        """The repository's snapshots of this target (or the ones named), as restic lists
        them."""
        done = await self._restic(ctx, ["snapshots", "--json", "--host", ctx.target.name,
                                        *ids], what="restic snapshots", timeout=ctx.timeout())
        self._unreachable(ctx, done)
        if not done.ok:
            raise VerificationFailed(f"restic snapshots failed (exit {done.returncode}): "
                                     f"{done.tail(3)}")
        # Over ssh restic first says "reading repository password from stdin" on stdout.
        listed: Any = next((json.loads(line) for line in done.stdout.splitlines()
                            if line.startswith("[")), [])
        return listed if isinstance(listed, list) else []

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        options = self.options_of(ctx)
        snapshot = result.facts.get("snapshot_id")
        if not snapshot:
            raise VerificationFailed("the backup reported no snapshot id")
        try:
            found = await self.snapshots(ctx, snapshot)
        except BackupFailed as exc:
            raise VerificationFailed(exc.reason) from None
        if not any(str(s.get("id", "")).startswith(snapshot) for s in found):
            raise VerificationFailed(f"snapshot {snapshot} is not in the repository")
        args = ["check"]
        if options.read_data_subset:
            args.append(f"--read-data-subset={options.read_data_subset}")
        done = await self._checked(ctx, args, what="restic check", timeout=options.timeout,
                                   error=VerificationFailed)
        subset = f", data subset {options.read_data_subset} read back" \
            if options.read_data_subset else ""
        return Verification(method=f"restic check{subset}", checked=1,
                            details=done.tail(1))

    async def retain(self, ctx: TaskContext, policy: RetentionPolicy) -> RetentionResult:
        if policy.keeps_everything:
            return RetentionResult()
        options = self.options_of(ctx)
        args = ["forget", "--json", "--host", ctx.target.name, "--tag", TAG]
        for path in self._paths(ctx, options):
            args += ["--path", _absolute(ctx, path)]
        for flag, value in (("--keep-last", policy.keep_last),
                            ("--keep-daily", policy.keep_daily),
                            ("--keep-weekly", policy.keep_weekly),
                            ("--keep-monthly", policy.keep_monthly)):
            if value is not None:
                args += [flag, str(value)]
        if options.prune:
            args.append("--prune")
        done = await self._checked(ctx, args, what="restic forget", timeout=options.timeout,
                                   error=RetentionFailed)
        return forget_result(done.stdout)


def forget_result(stdout: str) -> RetentionResult:
    """Removed and kept snapshot ids from ``restic forget --json``."""
    removed: list[str] = []
    kept: list[str] = []
    for line in stdout.splitlines():
        if not line.startswith("["):
            continue
        for group in json.loads(line):
            removed += [s.get("short_id") or s["id"][:8] for s in group.get("remove") or []]
            kept += [s.get("short_id") or s["id"][:8] for s in group.get("keep") or []]
    return RetentionResult(removed=removed, kept=kept)


def _absolute(ctx: TaskContext, path: str) -> str:
    """restic records absolute paths; a relative local one is made absolute the same way."""
    if ctx.target.is_local and not path.startswith("/"):
        path = str(Path(path).absolute())
    return os.path.normpath(path)
