"""Retention for folder-per-backup destinations: which backups to remove.

Two rules, each a pure function choosing what to delete (tested with many dates), and the I/O
that deletes:

* :func:`to_forget`: keep-last / keep-daily / keep-weekly / keep-monthly, as restic's ``forget``
  counts them: a backup is kept if any rule keeps it; ``keep_last=N`` keeps N backups in all and
  ``keep_daily=N`` the newest backup of each of the N most recent days that have one (weekly: ISO
  weeks; monthly: calendar months), the backup just made included (it is the newest, and it
  counts). With no rule on, nothing is removed. Days are counted in the time zone given.
* :func:`space_order`: under space pressure (INPE's space management), the backups that may go,
  oldest first across every series, each series keeping at least its newest ``keep_min``.
  :func:`make_room` deletes in that order until enough space is free and says what it removed.

A backup is a folder whose name is its time (the executor's ``2026-11-30-22-48-00-000``, or any
name starting with ``YYYY-MM-DD``). Folders named otherwise are never candidates: with an output
template whose last part is not the backup's time (``…/<julian day>/<target>``), the siblings of
a task's folder are other targets' backups, and a rule that deleted them by age would destroy
them. The folder being written (``current``) is never a candidate either.

Folder names are the plan's local time (the executor writes them in the plan's time zone), so
they are read in that zone: a backup's day is the day its name says, around midnight and across a
DST change alike. The hour a DST change repeats cannot be told apart by name: both read as its
first occurrence, the executor's ``-2`` suffix keeping them in order.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from services.executor.plugins.api import RetentionPolicy, RetentionResult

_STAMP = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:[-T_](?P<H>\d{2})-?(?P<M>\d{2})-?(?P<S>\d{2})(?:-(?P<ms>\d{1,6}))?)?")


@dataclass(frozen=True)
class Backup:
    """One backup of a series: where it is, and when it was taken (timezone-aware)."""

    path: Path
    time: datetime


def time_of(folder: Path, tz: tzinfo = UTC) -> datetime | None:
    """When a backup folder was taken, from its name read as the wall clock of ``tz`` (the
    plan's zone); None when the name does not start with a date or is not a valid one."""
    match = _STAMP.match(folder.name)
    if not match:
        return None
    g = match.groupdict()
    try:
        return datetime(int(g["y"]), int(g["m"]), int(g["d"]), int(g["H"] or 0),
                        int(g["M"] or 0), int(g["S"] or 0),
                        int((g["ms"] or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None


def _age(backup: Backup) -> tuple[float, str]:
    """Sort key: the instant, then the name (``…-000`` before ``…-000-2``)."""
    return backup.time.timestamp(), backup.path.name


def backups_in(series: Path, *, current: Path | None = None, tz: tzinfo = UTC) -> list[Backup]:
    """The backup folders of a series (the siblings of one target/action/item named by their
    time in ``tz``), oldest first, without ``current``."""
    if not series.is_dir():
        return []
    found = []
    for path in series.iterdir():
        moment = time_of(path, tz)
        if moment is not None and path != current and path.is_dir() and not path.is_symlink():
            found.append(Backup(path, moment))
    return sorted(found, key=_age)


def _bucket_keep(backups: Sequence[Backup], count: int | None,
                 key: Callable[[datetime], object]) -> set[Backup]:
    """The newest backup of each of the ``count`` most recent buckets (newest first input)."""
    kept: set[Backup] = set()
    if not count:
        return kept
    seen: set[object] = set()
    for backup in backups:
        bucket = key(backup.time)
        if bucket in seen:
            continue
        seen.add(bucket)
        kept.add(backup)
        if len(seen) == count:
            break
    return kept


def to_forget(backups: Iterable[Backup], policy: RetentionPolicy, tz: tzinfo = UTC, *,
              newest: Backup | None = None) -> list[Backup]:
    """The backups the policy does not keep, oldest first. ``newest`` (the backup just made)
    counts as the newest whatever its time says, and is never one of those returned."""
    if policy.keeps_everything:
        return []
    ordered = sorted((b for b in backups if b != newest), key=_age, reverse=True)
    if newest is not None:
        ordered.insert(0, newest)
    kept: set[Backup] = set(ordered[: policy.keep_last or 0])
    kept |= _bucket_keep(ordered, policy.keep_daily, lambda t: t.astimezone(tz).date())
    kept |= _bucket_keep(ordered, policy.keep_weekly,
                         lambda t: t.astimezone(tz).isocalendar()[:2])
    kept |= _bucket_keep(ordered, policy.keep_monthly,
                         lambda t: (t.astimezone(tz).year, t.astimezone(tz).month))
    return [b for b in reversed(ordered) if b not in kept and b != newest]


def space_order(series: Mapping[str, Iterable[Backup]], keep_min: int) -> list[Backup]:
    """The backups that may be removed for space, oldest first across all series: every
    backup but the newest ``keep_min`` of its series."""
    candidates: list[Backup] = []
    for backups in series.values():
        ordered = sorted(backups, key=_age)
        candidates += ordered[: max(len(ordered) - keep_min, 0)]
    return sorted(candidates, key=lambda b: (b.time.timestamp(), str(b.path)))


def remove(backup: Backup) -> None:
    shutil.rmtree(backup.path)


def apply_policy(series: Path, policy: RetentionPolicy, *, current: Path | None = None,
                 tz: tzinfo = UTC) -> RetentionResult:
    """Delete the backups of ``series`` (folder names read in ``tz``) the policy does not keep.
    ``current``, the backup just made, always stays; named by its time, it is one of the series
    and counts as its newest (``keep_last=2`` leaves it and one other)."""
    backups = backups_in(series, current=current, tz=tz)
    moment = None if current is None else time_of(current, tz)
    newest = None if current is None or moment is None else Backup(current, moment)
    doomed = to_forget(backups, policy, tz, newest=newest)
    for backup in doomed:
        remove(backup)
    gone = set(doomed)
    kept = [str(b.path) for b in backups if b not in gone]
    if current is not None:
        kept.append(str(current))
    return RetentionResult(removed=[str(b.path) for b in doomed], kept=kept)


def make_room(series: Mapping[str, Iterable[Backup]], *, keep_min: int,
              free: Callable[[], int], needed: int) -> list[Backup]:
    """Remove backups oldest first (each series keeping its newest ``keep_min``) until
    ``free()`` is at least ``needed`` bytes; returns what was removed, in order. Stops early
    when nothing more may go (the caller then sees ``free()`` still short)."""
    removed: list[Backup] = []
    for backup in space_order(series, keep_min):
        if free() >= needed:
            break
        remove(backup)
        removed.append(backup)
    return removed


def disk_free(path: Path) -> int:
    """Bytes free for us on the filesystem holding ``path``."""
    return shutil.disk_usage(path).free
