"""Which folder-per-backup backups retention removes: keep-last/daily/weekly/monthly with many
dates and time zones, and space-pressure pruning (oldest first beyond the minimum kept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.executor.plugins.api import RetentionPolicy
from services.executor.plugins.folders import previous_backup
from services.executor.plugins.retention import (
    Backup,
    apply_policy,
    backups_in,
    make_room,
    space_order,
    time_of,
    to_forget,
)
from tests.executor.support import stamp, write_tree


def _hourly(first: datetime, last: datetime) -> list[Backup]:
    backups, moment = [], first
    while moment <= last:
        backups.append(Backup(Path(stamp(moment)), moment))
        moment += timedelta(hours=1)
    return backups


def _kept(backups: list[Backup], policy: RetentionPolicy, tz: ZoneInfo | None = None
          ) -> list[str]:
    gone = set(to_forget(backups, policy, *([tz] if tz else [])))
    return sorted(b.path.name for b in backups if b not in gone)


HOURLY = _hourly(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))


def test_no_rule_keeps_everything() -> None:
    assert to_forget(HOURLY, RetentionPolicy()) == []


def test_keep_last_keeps_the_newest() -> None:
    assert _kept(HOURLY, RetentionPolicy(keep_last=3)) == [
        "2026-11-30-21-00-00-000", "2026-11-30-22-00-00-000", "2026-11-30-23-00-00-000"]
    assert _kept(HOURLY, RetentionPolicy(keep_last=0)) == []


def test_keep_daily_weekly_monthly_keep_the_newest_of_each_period() -> None:
    assert _kept(HOURLY, RetentionPolicy(keep_daily=3)) == [
        "2026-11-28-23-00-00-000", "2026-11-29-23-00-00-000", "2026-11-30-23-00-00-000"]
    # 2026-11-30 is the Monday of ISO week 49: its last backup stands for that week.
    assert _kept(HOURLY, RetentionPolicy(keep_weekly=3)) == [
        "2026-11-22-23-00-00-000", "2026-11-29-23-00-00-000", "2026-11-30-23-00-00-000"]
    assert _kept(HOURLY, RetentionPolicy(keep_monthly=3)) == [
        "2026-09-30-23-00-00-000", "2026-10-31-23-00-00-000", "2026-11-30-23-00-00-000"]


def test_rules_add_up_and_a_backup_kept_twice_counts_once() -> None:
    kept = _kept(HOURLY, RetentionPolicy(keep_last=2, keep_daily=2, keep_monthly=2))
    assert kept == ["2026-10-31-23-00-00-000", "2026-11-29-23-00-00-000",
                    "2026-11-30-22-00-00-000", "2026-11-30-23-00-00-000"]
    forgotten = to_forget(HOURLY, RetentionPolicy(keep_last=2, keep_daily=2, keep_monthly=2))
    assert len(forgotten) == len(HOURLY) - 4
    assert forgotten == sorted(forgotten, key=lambda b: b.time)  # oldest first


def test_days_without_a_backup_do_not_count() -> None:
    sparse = [Backup(Path(f"b{n}"), datetime(2026, 11, d, 3, tzinfo=UTC))
              for n, d in enumerate([1, 2, 10, 20, 20, 30])]
    assert _kept(sparse, RetentionPolicy(keep_daily=3)) == ["b2", "b4", "b5"]


def test_periods_are_counted_in_the_time_zone_given() -> None:
    # 23:00 UTC on the 30th of November is already December in Berlin.
    berlin = ZoneInfo("Europe/Berlin")
    assert _kept(HOURLY, RetentionPolicy(keep_monthly=2), berlin) == [
        "2026-11-30-22-00-00-000", "2026-11-30-23-00-00-000"]
    assert _kept(HOURLY, RetentionPolicy(keep_daily=2), berlin) == [
        "2026-11-30-22-00-00-000", "2026-11-30-23-00-00-000"]
    tokyo = ZoneInfo("Asia/Tokyo")  # UTC+9: a Tokyo day ends at 14:00 UTC
    assert _kept(HOURLY, RetentionPolicy(keep_daily=2), tokyo) == [
        "2026-11-30-14-00-00-000", "2026-11-30-23-00-00-000"]


def test_folder_names_give_the_time_and_others_are_never_candidates(tmp_path: Path) -> None:
    assert time_of(Path("2026-11-30-22-48-00-120")) == datetime(2026, 11, 30, 22, 48, 0, 120000,
                                                                tzinfo=UTC)
    assert time_of(Path("2026-11-30")) == datetime(2026, 11, 30, tzinfo=UTC)
    assert time_of(Path("2026-13-45")) is None and time_of(Path("334")) is None
    # With a template like <destination>/<julian day>/<target>, a task's siblings are other
    # targets: retention must not touch them, nor take one for the previous backup.
    day = tmp_path / "334"
    write_tree(day, {"web-1/f": "w", "db-1/f": "d"})
    result = apply_policy(day, RetentionPolicy(keep_last=0), current=day / "mail-1")
    assert result.removed == [] and sorted(p.name for p in day.iterdir()) == ["db-1", "web-1"]
    assert previous_backup(day / "mail-1") is None


def test_apply_policy_deletes_folders_and_never_the_current_one(tmp_path: Path) -> None:
    series = tmp_path / "series"
    names = [stamp(datetime(2026, 11, d, 22, tzinfo=UTC)) for d in range(1, 6)]
    for name in names:
        write_tree(series / name, {"data": name})
    current = series / names[0]  # even the oldest stays when it is the task's own
    result = apply_policy(series, RetentionPolicy(keep_last=1), current=current)
    assert sorted(p.name for p in series.iterdir()) == [names[0], names[4]]
    assert sorted(Path(p).name for p in result.removed) == names[1:4]
    assert previous_backup(series / stamp(datetime(2026, 12, 1, tzinfo=UTC))) == series / names[4]
    assert previous_backup(series / names[0]) is None
    write_tree(series / "notes", {"x": "not a backup"})
    assert previous_backup(series / "unnamed") == series / names[4]


def test_space_order_is_oldest_first_beyond_the_minimum_of_each_series() -> None:
    day = datetime(2026, 11, 1, tzinfo=UTC)
    a = [Backup(Path(f"a{n}"), day + timedelta(days=2 * n)) for n in range(5)]  # days 0..8
    b = [Backup(Path(f"b{n}"), day + timedelta(days=2 * n + 1)) for n in range(3)]  # 1,3,5
    order = space_order({"a": a, "b": b}, keep_min=2)
    assert [x.path.name for x in order] == ["a0", "b0", "a1", "a2"]
    assert space_order({"a": a[:2]}, keep_min=2) == []


def test_make_room_removes_until_enough_is_free(tmp_path: Path) -> None:
    series = {}
    for name in ("web", "db"):
        folder = tmp_path / name
        for d in range(1, 5):
            write_tree(folder / stamp(datetime(2026, 11, d, 22 if name == "web" else 23,
                                               tzinfo=UTC)), {"blob": b"x" * 1000})
        series[name] = backups_in(folder)
    capacity = 10_000

    def free() -> int:
        used = sum(f.stat().st_size for f in tmp_path.rglob("blob"))
        return capacity - used

    assert free() == 2000
    removed = make_room(series, keep_min=2, free=free, needed=4500)
    assert [(b.path.parent.name, b.path.name[:10]) for b in removed] == [
        ("web", "2026-11-01"), ("db", "2026-11-01"), ("web", "2026-11-02")]
    assert free() == 5000 and not any(b.path.exists() for b in removed)
    # Asking for more than may go removes what may go and stops at the minimum.
    more = make_room({k: backups_in(tmp_path / k) for k in series}, keep_min=2, free=free,
                     needed=9000)
    assert [b.path.parent.name for b in more] == ["db"]
    assert len(list(tmp_path.rglob("blob"))) == 4
