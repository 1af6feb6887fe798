"""Backups kept as one folder each (rsync, pg_dump, command): what every such plugin shares.

A series is the folder holding every backup of one target, action and item (the parent of a
task's output folder); its backups are its sub-folders, named by their time. Retention deletes
whole folders; the previous backup is the newest sibling (rsync's ``--link-dest``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from services.executor.plugins import retention
from services.executor.plugins.api import (
    FileEntry,
    Plugin,
    RetentionFailed,
    RetentionPolicy,
    RetentionResult,
    TaskContext,
)

_READ = 1024 * 1024


def previous_backup(output: Path, tz: tzinfo = UTC) -> Path | None:
    """The newest earlier backup of the same series (a sibling of ``output`` named by its
    time in ``tz``, and older than ``output`` when its name gives a time too), if any."""
    now = retention.time_of(output, tz)
    earlier = [b for b in retention.backups_in(output.parent, current=output, tz=tz)
               if now is None or b.time.timestamp() < now.timestamp()
               or (b.time == now and b.path.name < output.name)]
    return earlier[-1].path if earlier else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def files_in(folder: Path, *, checksums: bool) -> list[FileEntry]:
    """Every regular file under ``folder`` (paths relative to it, sorted), with sizes and,
    when asked, SHA-256 checksums."""
    entries = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            entries.append(FileEntry(
                path=str(path.relative_to(folder)), size=path.stat().st_size,
                checksum=sha256_of(path) if checksums else None))
    return entries


async def files_in_background(folder: Path, *, checksums: bool) -> list[FileEntry]:
    """:func:`files_in` on a thread (checksums read every byte)."""
    return await asyncio.to_thread(files_in, folder, checksums=checksums)


class FolderPlugin(Plugin):
    """A plugin whose backups are folders: retention deletes the folders its policy does not
    keep (never the task's own, which counts as one of those kept), reading their names in the
    plan's time zone."""

    async def retain(self, ctx: TaskContext, policy: RetentionPolicy) -> RetentionResult:
        try:
            return await asyncio.to_thread(retention.apply_policy, ctx.output.parent, policy,
                                           current=ctx.output, tz=ZoneInfo(ctx.timezone))
        except OSError as exc:
            raise RetentionFailed(f"removing old backups under {ctx.output.parent}: {exc}"
                                  ) from exc
