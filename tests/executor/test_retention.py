"""Which folder-per-backup backups retention removes: keep-last/daily/weekly/monthly with many
dates and time zones, and space-pressure pruning (oldest first beyond the minimum kept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.executor.plans.paths import reserve
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
    current = series / names[0]  # even the oldest stays when it is the task's own (and counts)
    result = apply_policy(series, RetentionPolicy(keep_last=2), current=current)
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


# --- The backup just made counts (restic's semantics) ------------------------------------------


def _series(folder: Path, moments: list[datetime]) -> list[str]:
    names = [stamp(m) for m in moments]
    for name in names:
        write_tree(folder / name, {"data": name})
    return names


def _left(series: Path) -> list[str]:
    return sorted(p.name for p in series.iterdir())


def test_keep_last_counts_the_backup_just_made(tmp_path: Path) -> None:
    # `restic forget --keep-last 2` keeps 2 snapshots in all, the new one included.
    series = tmp_path / "series"
    names = _series(series, [datetime(2026, 11, d, 22, tzinfo=UTC) for d in range(1, 7)])
    current = series / names[-1]
    result = apply_policy(series, RetentionPolicy(keep_last=2), current=current)
    assert _left(series) == names[-2:]
    assert sorted(Path(p).name for p in result.removed) == names[:-2]
    assert sorted(Path(p).name for p in result.kept) == names[-2:]


def test_keep_daily_counts_the_day_of_the_backup_just_made(tmp_path: Path) -> None:
    series = tmp_path / "series"
    names = _series(series, [datetime(2026, 11, d, h, tzinfo=UTC)
                             for d in (1, 2, 3) for h in (10, 22)])
    current = series / stamp(datetime(2026, 11, 4, 22, tzinfo=UTC))
    write_tree(current, {"data": "new"})
    apply_policy(series, RetentionPolicy(keep_daily=2), current=current)
    # Two days in all: the new backup's day and the day before.
    assert _left(series) == [names[-1], current.name]


def test_the_backup_just_made_stays_even_when_its_name_sorts_first(tmp_path: Path) -> None:
    # It counts as the newest whatever its name says (a clock set back, the repeated hour of a
    # DST change) and is never removed, even by a rule keeping nothing.
    series = tmp_path / "series"
    names = _series(series, [datetime(2026, 11, d, 22, tzinfo=UTC) for d in range(1, 5)])
    current = series / names[0]
    apply_policy(series, RetentionPolicy(keep_last=2), current=current)
    assert _left(series) == [names[0], names[3]]
    apply_policy(series, RetentionPolicy(keep_last=0), current=current)
    assert _left(series) == [names[0]]


# --- Folder names are the plan's local time ---------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def test_folder_names_are_read_in_the_zone_given() -> None:
    # Written by a Berlin plan at 00:30 on the 30th (CET, UTC+1): 23:30 UTC on the 29th.
    assert time_of(Path("2026-11-30-00-30-00-000"), BERLIN) == datetime(
        2026, 11, 29, 23, 30, tzinfo=UTC)
    assert time_of(Path("2026-07-01-00-30-00-000"), BERLIN) == datetime(
        2026, 6, 30, 22, 30, tzinfo=UTC)  # CEST, UTC+2
    assert time_of(Path("2026-11-30-00-30-00-000")) == datetime(2026, 11, 30, 0, 30, tzinfo=UTC)


def test_days_are_the_days_written_in_the_folder_names_around_midnight(tmp_path: Path) -> None:
    # A Berlin plan: its folders are named in Berlin time, and a day is the day the name says.
    series = tmp_path / "series"
    names = _series(series, [datetime(2026, 11, 28, 23, 30), datetime(2026, 11, 29, 20, 0),
                             datetime(2026, 11, 29, 23, 30), datetime(2026, 11, 30, 0, 30)])
    current = series / stamp(datetime(2026, 11, 30, 22, 0))
    write_tree(current, {"data": "new"})
    apply_policy(series, RetentionPolicy(keep_daily=2), current=current, tz=BERLIN)
    assert _left(series) == ["2026-11-29-23-30-00-000", current.name]
    apply_policy(series, RetentionPolicy(keep_daily=1), current=current, tz=BERLIN)
    assert _left(series) == [current.name]
    assert len(names) == 4


def test_days_and_order_across_a_dst_change(tmp_path: Path) -> None:
    # Berlin leaves summer time on 2026-10-25 at 03:00 CEST (01:00 UTC): 02:00-03:00 happens
    # twice. Backups taken every hour from 22:30 UTC on the 24th, named as the executor names
    # them (a repeated name gets -2).
    series = tmp_path / "series"
    moment = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)
    made = []
    while moment <= datetime(2026, 10, 25, 23, 30, tzinfo=UTC):
        made.append(reserve(series / stamp(moment.astimezone(BERLIN))))
        moment += timedelta(hours=1)
    repeated = [p.name for p in made if p.name.startswith("2026-10-25-02-30")]
    assert repeated == ["2026-10-25-02-30-00-000", "2026-10-25-02-30-00-000-2"]
    # The 25th in Berlin had 25 hours, hence 25 backups; the times read back are the instants.
    on_25th = [b for b in backups_in(series, tz=BERLIN) if b.path.name.startswith("2026-10-25")]
    assert len(on_25th) == 25
    # The repeated hour cannot be told apart by its name: both read as its first occurrence,
    # and the -2 sorts after it; the order stays the names' order.
    assert [b.time.astimezone(UTC).hour for b in on_25th][:5] == [22, 23, 0, 0, 2]
    assert [b.path.name for b in on_25th] == sorted(b.path.name for b in on_25th)
    current = made[-1]  # 00:30 on the 26th, Berlin time
    assert current.name == "2026-10-26-00-30-00-000"
    apply_policy(series, RetentionPolicy(keep_daily=3), current=current, tz=BERLIN)
    assert _left(series) == ["2026-10-24-23-30-00-000", "2026-10-25-23-30-00-000",
                             current.name]
    assert previous_backup(series / "2026-10-26-01-30-00-000", BERLIN) == current
