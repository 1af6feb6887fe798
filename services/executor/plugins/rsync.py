"""``rsync.sync``: a full copy of a folder of the target, one folder per backup.

Each backup is a complete tree in the task's own output folder; files unchanged since the
previous backup of the series are hard-linked to it (``--link-dest``), so a backup never
overwrites an earlier one, costs only what changed, and is removed by deleting its folder.

The per-file list comes from ``-ii --out-format`` (one line per file: ``>f`` transferred, with
rsync's own checksum of it; ``hf`` hard-linked to the previous backup), the totals from
``--stats``. Exit 23 (partial transfer) fails the task with the files that did transfer and
rsync's per-file errors, unless ``partial_ok``; exit 24 (source files vanished while copying:
live data) is a success with warnings. Verification compares the backup with the source by
checksum (``--checksum --dry-run``): any file that differs, is missing or is extra fails it.

Over ssh (a target with ``ssh``) the source is ``user@host:path``; rsync runs ``ssh`` with the
target's port, key and options.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from services.executor.plugins import process
from services.executor.plugins.api import (
    Action,
    ActionOptions,
    BackupFailed,
    BackupResult,
    DiscoveryFailed,
    FileEntry,
    Item,
    PluginError,
    Target,
    TargetUnreachable,
    TaskContext,
    Verification,
    VerificationFailed,
)
from services.executor.plugins.folders import FolderPlugin, previous_backup
from services.executor.plugins.process import CommandNotFound, CommandTimedOut, Completed

RSYNC = "rsync"
PARTIAL, VANISHED = 23, 24
# rsync's exit statuses that mean the other side could not be reached.
UNREACHABLE = {5: "error starting client-server protocol", 10: "error in socket I/O",
               12: "error in rsync protocol data stream", 35: "timeout waiting for daemon "
               "connection", 255: "ssh failed"}
# Fields of an --out-format line; the name is last, so a "|" in it does no harm.
OUT_FORMAT = "%i|%l|%C|%n"
# Messages and numbers as parsed here, whatever the executor's locale.
PLAIN = {"LC_ALL": "C"}
_ESCAPED = re.compile(rb"\\#([0-7]{3})")


class RsyncOptions(ActionOptions):
    source: str = Field(description="The folder to back up, on the target (its contents are "
                        "copied; with an item pattern, the items are its entries).")
    exclude: list[str] = Field(default_factory=list, description="rsync --exclude patterns.")
    link_dest: bool = Field(True, description="Hard-link unchanged files to the previous "
                            "backup (--link-dest).")
    partial_ok: bool = Field(False, description="A partial transfer (exit 23) still succeeds, "
                             "with its transfer errors recorded.")
    compress: bool = Field(False, description="Compress over the network (-z).")
    bwlimit: str | None = Field(None, description="rsync --bwlimit, e.g. 10m.")
    args: list[str] = Field(default_factory=list, description="More rsync arguments.")


# ---------------------------------------------------------------------------------------------
# Reading rsync's output


def parse_itemized(line: str) -> FileEntry | None:
    """A file from one ``--out-format`` line (None for directories, links, deletions and
    anything that is not such a line)."""
    fields = line.split("|", 3)
    if len(fields) != 4:
        return None
    changes, length, checksum, name = fields
    name = unescape(name)
    if len(changes) < 2 or changes[1] != "f":
        return None
    transferred = changes[0] in "<>"
    digest = checksum.strip()
    return FileEntry(path=name, size=int(length) if length.isdigit() else None,
                     checksum=f"xxh128:{digest}" if transferred and digest.strip("0") else None,
                     transferred=transferred)


def unescape(name: str) -> str:
    """A name as rsync prints it, with its ``\\#ooo`` escapes of unprintable bytes undone."""
    if "\\#" not in name:
        return name
    raw = _ESCAPED.sub(lambda m: bytes([int(m[1], 8)]), name.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


_STAT = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]+): (?P<value>[\d,.]+)")


def parse_stats(text: str) -> dict[str, int]:
    """``--stats`` lines as numbers by their label (``Total transferred file size``…)."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        match = _STAT.match(line.strip())
        if match:
            value = match["value"].replace(",", "")
            try:
                stats[match["key"].strip()] = int(float(value))
            except ValueError:
                continue
    return stats


def transfer_errors(stderr: str) -> list[str]:
    """rsync's per-file complaints (``rsync: … failed: …``, ``file has vanished: …``), without
    its closing summary line."""
    errors = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("rsync error:"):
            continue
        if line.startswith(("rsync:", "file has vanished", "IO error", "cannot delete")):
            errors.append(line)
    return errors


def differences(itemized: str) -> list[str]:
    """From a ``--checksum --dry-run -i --delete`` comparison: the lines naming a file whose
    content differs, that is missing from the backup, or that the backup has and the source
    has not (attribute-only lines, starting with ``.``, are not differences of content)."""
    found = []
    for line in itemized.splitlines():
        if not line.strip():
            continue
        if line.startswith("*deleting"):
            found.append(f"only in the backup: {line.split(maxsplit=1)[1].strip()}")
        elif line[0] in "<>ch" and len(line) > 12 and line[1] in "fL":
            found.append(f"differs from the source: {line[12:].strip()}")
    return found


# ---------------------------------------------------------------------------------------------
# Facts about the tool and the target, learned once per process


_local_facts: dict[str, str] = {}
_remote_facts: dict[tuple[str, str, int], dict[str, str]] = {}


async def _facts(target: Target) -> dict[str, str]:
    if not _local_facts:
        done = await process.run([RSYNC, "--version"], timeout=30)
        _local_facts["rsync_version"] = done.stdout.splitlines()[0] if done.stdout else "?"
        uname = os.uname()
        _local_facts["executor_os"] = f"{uname.sysname} {uname.release} {uname.machine}"
    facts = dict(_local_facts)
    if target.is_local:
        facts["host_os"] = facts["executor_os"]
        return facts
    assert target.ssh is not None
    key = (target.login, target.address, target.ssh.port)
    if key not in _remote_facts:
        done = await process.run(target.command(
            ["sh", "-c", "uname -srm; rsync --version | head -n 1"]), timeout=30)
        lines = done.stdout.splitlines() if done.ok else []
        _remote_facts[key] = {"host_os": lines[0] if lines else "?",
                              "remote_rsync_version": lines[1] if len(lines) > 1 else "?"}
    return {**facts, **_remote_facts[key]}


# ---------------------------------------------------------------------------------------------
# The plugin


def _source_path(options: RsyncOptions, item: Item) -> str:
    base = options.source.rstrip("/") or "/"
    path = base if item.whole else f"{base}/{item.name}"
    return path


class RsyncPlugin(FolderPlugin):
    name = "rsync"
    summary = "Copies a folder (local or over ssh) into a new folder per backup, hard-linking " \
              "what did not change."
    actions = (Action(name="sync", summary="A full copy of a folder with --link-dest to the "
                      "previous backup; verified by checksum.", options=RsyncOptions),)
    discovers = True

    def options_of(self, ctx: TaskContext) -> RsyncOptions:
        options = self.options(ctx.action, ctx.options)
        assert isinstance(options, RsyncOptions)
        return options

    def _base_argv(self, target: Target, options: RsyncOptions) -> list[str]:
        argv = [RSYNC, "-a", "--numeric-ids"]
        if not target.is_local:
            argv += ["-e", shlex.join(target.ssh_argv())]
        if options.compress:
            argv.append("-z")
        if options.bwlimit:
            argv.append(f"--bwlimit={options.bwlimit}")
        argv += [f"--exclude={pattern}" for pattern in options.exclude]
        return argv + list(options.args)

    def _source(self, ctx: TaskContext, options: RsyncOptions) -> str:
        path = _source_path(options, ctx.item)
        # A folder's contents (trailing slash); a file item copies as itself.
        return ctx.target.location(path if ctx.item.facts.get("type") == "file" else f"{path}/")

    async def discover(self, target: Target, action: str,
                       options: Mapping[str, Any]) -> list[Item]:
        """The entries of ``source`` on the target (folders and files)."""
        parsed = self.options(action, options)
        assert isinstance(parsed, RsyncOptions)
        source = parsed.source.rstrip("/") or "/"
        if target.is_local:
            return await asyncio.to_thread(_local_entries, Path(source))
        done = await _checked(target.command(
            ["find", source, "-mindepth", "1", "-maxdepth", "1", "-printf", "%y %s %f\\0"]),
            what=f"listing {source} on {target.name}", timeout=60, error=DiscoveryFailed)
        items = []
        # NUL-separated: a name may hold a newline, and must not read as a second entry.
        for line in done.stdout.split("\0"):
            kind, _, rest = line.partition(" ")
            size, _, name = rest.partition(" ")
            if name:
                items.append(Item(name=name, facts={
                    "type": "folder" if kind == "d" else "file" if kind == "f" else kind,
                    "size": int(size) if size.isdigit() else None}))
        return sorted(items, key=lambda i: i.name)

    async def backup(self, ctx: TaskContext) -> BackupResult:
        options = self.options_of(ctx)
        output = ctx.output
        if output.exists() and any(output.iterdir()):
            raise BackupFailed(f"{output} already holds files; a backup never overwrites "
                               "another")
        output.mkdir(parents=True, exist_ok=True)
        argv = [*self._base_argv(ctx.target, options), "--stats", "-ii",
                f"--out-format={OUT_FORMAT}"]
        previous = previous_backup(output, ZoneInfo(ctx.timezone)) if options.link_dest else None
        if previous is not None:
            argv.append(f"--link-dest={previous.resolve()}")
        argv += [self._source(ctx, options), f"{output}/"]
        files: list[FileEntry] = []

        def take(line: str) -> None:
            entry = parse_itemized(line)
            if entry is not None:
                files.append(entry)

        facts = await _facts(ctx.target)
        try:
            done = await ctx.run(argv, on_line=take, env=PLAIN)
        except CommandTimedOut as exc:
            raise BackupFailed(str(exc), self._result(ctx, files, exc.stdout, exc.stderr,
                                                      facts, previous)) from None
        except CommandNotFound as exc:
            raise BackupFailed(str(exc)) from None
        result = self._result(ctx, files, done.stdout, done.stderr, facts, previous)
        if done.returncode in UNREACHABLE and not files:
            raise TargetUnreachable(f"rsync could not reach {ctx.target.login}: "
                                    f"{done.tail(3)} (exit {done.returncode}, "
                                    f"{UNREACHABLE[done.returncode]})")
        if done.returncode == VANISHED:
            return result.model_copy(update={"warnings": [
                *result.warnings, "some source files vanished during the transfer"]})
        if done.returncode == PARTIAL and options.partial_ok:
            return result
        if done.returncode != 0:
            what = "partial transfer" if done.returncode == PARTIAL else "rsync failed"
            raise BackupFailed(f"{what} (exit {done.returncode}): {done.tail(5)}", result)
        return result

    def _result(self, ctx: TaskContext, files: list[FileEntry], stdout: str, stderr: str,
                facts: dict[str, str], previous: Path | None) -> BackupResult:
        stats = parse_stats(stdout)
        transferred = [f for f in files if f.transferred]
        if previous is not None:
            facts = {**facts, "link_dest": str(previous)}
        return BackupResult(
            files=files,
            files_transferred=stats.get("Number of regular files transferred",
                                        len(transferred)),
            bytes=stats.get("Total transferred file size",
                            sum(f.size or 0 for f in transferred)),
            total_bytes=stats.get("Total file size"),
            transfer_errors=transfer_errors(stderr),
            facts=facts, location=str(ctx.output),
            log=stdout if not stderr else f"{stdout}\n--- stderr ---\n{stderr}")

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        options = self.options_of(ctx)
        argv = [*self._base_argv(ctx.target, options), "--checksum", "--dry-run", "-i",
                "--delete", self._source(ctx, options), f"{ctx.output}/"]
        done = await _checked(argv, what="checksum comparison", timeout=ctx.timeout(),
                              allowed=(0, VANISHED))
        found = differences(done.stdout)
        if found:
            shown = "; ".join(found[:5]) + (f" (and {len(found) - 5} more)"
                                             if len(found) > 5 else "")
            raise VerificationFailed(f"{len(found)} file(s) do not match the source: {shown}",
                                     found)
        return Verification(method="rsync --checksum comparison with the source",
                            checked=len(result.files))


async def _checked(argv: list[str], *, what: str, timeout: float | None,
                   allowed: tuple[int, ...] = (0,),
                   error: type[PluginError] = VerificationFailed) -> Completed:
    """Run a command whose failure makes the step fail with ``error`` (verification,
    discovery)."""
    try:
        done = await process.run(argv, timeout=timeout, env=PLAIN)
    except (CommandTimedOut, CommandNotFound) as exc:
        raise error(f"{what}: {exc}") from None
    if done.returncode not in allowed:
        raise error(f"{what} failed (exit {done.returncode}): {done.tail(5)}")
    return done


def _local_entries(source: Path) -> list[Item]:
    if not source.is_dir():
        raise DiscoveryFailed(f"{source} is not a folder on this machine")
    items = []
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        kind = "folder" if entry.is_dir(follow_symlinks=False) else \
            "file" if entry.is_file(follow_symlinks=False) else "other"
        items.append(Item(name=entry.name, facts={
            "type": kind, "size": entry.stat(follow_symlinks=False).st_size}))
    return items
