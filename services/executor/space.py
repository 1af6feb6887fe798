"""The destination's checks (DPOD's steps 3 and 4): is it a mount point, is there room; and
INPE's space management: under the threshold, the oldest backups go first (each series keeps
its newest few) until there is room again."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

from services.executor.plans.models import Destination
from services.executor.plans.paths import series_pattern
from services.executor.plugins import retention


@dataclass
class SpaceCheck:
    ok: bool
    reason: str | None = None
    removed: list[str] = field(default_factory=list)


def check_mount(destination: Destination) -> str | None:
    """Why the destination cannot be used (None: it can). A destination that must be a mount
    point and is not (the remote filesystem is not mounted) is refused rather than filling the
    local disk; one that need not be is created when missing."""
    path = Path(destination.path)
    if destination.must_be_mountpoint:
        if not path.is_dir():
            return f"destination {path} does not exist (it must be a mounted filesystem)"
        if not os.path.ismount(path):
            return f"destination {path} is not a mount point (is its filesystem mounted?)"
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"destination {path} cannot be created: {exc.strerror}"
    if not path.is_dir():
        return f"destination {path} is not a folder"
    return None


def check_space(destination: Destination, template: str, tz: tzinfo = UTC) -> SpaceCheck:
    """Enough free space for ``minFree``? If not, and ``pruneKeeping`` allows, remove the oldest
    backups of the plan's series (folder names read in the plan's zone ``tz``) until there is
    (what was removed is returned)."""
    if destination.min_free is None:
        return SpaceCheck(True)
    path = Path(destination.path)
    usage = shutil.disk_usage(path)
    needed = destination.min_free.needed(usage.total)
    if usage.free >= needed:
        return SpaceCheck(True)
    removed: list[str] = []
    pattern = series_pattern(template)
    if destination.prune_keeping is not None and pattern is not None:
        series = {str(folder): retention.backups_in(folder, tz=tz)
                  for folder in sorted(path.glob(pattern)) if folder.is_dir()}
        gone = retention.make_room(series, keep_min=destination.prune_keeping,
                                   free=lambda: retention.disk_free(path), needed=needed)
        removed = [str(b.path) for b in gone]
        if retention.disk_free(path) >= needed:
            return SpaceCheck(True, removed=removed)
    free = retention.disk_free(path)
    pruned = f" after removing {len(removed)} old backups" if removed else ""
    return SpaceCheck(False, f"destination {path} has {free} bytes free{pruned}, below the "
                      f"threshold {destination.min_free.describe()} ({needed} bytes)", removed)
