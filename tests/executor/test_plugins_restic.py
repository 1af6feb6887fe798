"""The restic plugin against the real restic with a temporary repository (locally and through
the test sshd)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.executor.plugins.api import (
    BackupFailed,
    BadOptions,
    RetentionPolicy,
    TargetUnreachable,
    VerificationFailed,
)
from services.executor.plugins.restic import ResticPlugin, forget_result
from tests.executor.support import Sshd, context, unreachable_target, write_tree

plugin = ResticPlugin()
PASSWORD = "correct horse battery staple"


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    subprocess.run(["restic", "init", "-q", "-r", str(repo)], check=True, capture_output=True,
                   env={**os.environ, "RESTIC_PASSWORD": PASSWORD})
    os.environ["TEST_RESTIC_PASSWORD"] = PASSWORD
    yield repo
    del os.environ["TEST_RESTIC_PASSWORD"]


def _options(repo: Path, source: Path, **more: Any) -> dict[str, Any]:
    return {"repository": str(repo), "paths": [str(source)],
            "password_env": "TEST_RESTIC_PASSWORD", **more}


async def test_a_backup_reports_its_files_and_snapshot_and_verifies(
        tmp_path: Path, repository: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "hello", "sub/b.txt": "world!"})
    ctx = context("restic.backup", tmp_path / "out", **_options(repository, source))

    result = await plugin.backup(ctx)

    assert sorted(f.path for f in result.files) == [f"{source}/a.txt", f"{source}/sub/b.txt"]
    assert {f.size for f in result.files} == {5, 6}
    assert result.files_transferred == 2 and result.total_bytes == 11 and result.bytes > 0
    snapshot = result.facts["snapshot_id"]
    assert result.location == f"restic snapshot {snapshot}"
    assert result.facts["restic_version"].startswith("restic 0.")
    assert PASSWORD not in result.log
    listed = await plugin.snapshots(ctx)
    assert [s["short_id"] for s in listed] == [snapshot]
    assert listed[0]["hostname"] == "localhost" and "backstop" in listed[0]["tags"]
    verified = await plugin.verify(ctx, result)
    assert verified.method == "restic check"

    again = await plugin.backup(ctx)
    assert again.files_transferred == 0 and not any(f.transferred for f in again.files)


async def test_a_damaged_repository_fails_verification(tmp_path: Path,
                                                       repository: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "hello" * 1000})
    ctx = context("restic.backup", tmp_path / "out",
                  **_options(repository, source, read_data_subset="100%"))
    result = await plugin.backup(ctx)
    pack = next(p for p in (repository / "data").rglob("*") if p.is_file())
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))

    with pytest.raises(VerificationFailed, match=r"restic check failed \(exit 1\)"):
        await plugin.verify(ctx, result)


async def test_a_wrong_password_fails_the_backup_without_showing_it(
        tmp_path: Path, repository: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "hello"})
    secret = tmp_path / "password"
    secret.write_text("not the password\n")
    options: dict[str, Any] = {"repository": str(repository), "paths": [str(source)],
               "password_file": str(secret)}
    with pytest.raises(BackupFailed) as failed:
        await plugin.backup(context("restic.backup", tmp_path / "out", **options))
    assert "wrong password" in failed.value.reason
    assert "not the password" not in str(failed.value)
    with pytest.raises(BadOptions, match="exactly one of password_env and password_file"):
        plugin.options("restic.backup", {"repository": "r", "paths": ["/x"]})


async def test_forget_keeps_the_newest_snapshots(tmp_path: Path, repository: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "1"})
    ctx = context("restic.backup", tmp_path / "out", **_options(repository, source))
    made = []
    for n in range(3):
        (source / "a.txt").write_text(str(n))
        made.append((await plugin.backup(ctx)).facts["snapshot_id"])

    retained = await plugin.retain(ctx, RetentionPolicy(keep_last=1))

    assert sorted(retained.removed) == sorted(made[:2]) and retained.kept == [made[2]]
    assert [s["short_id"] for s in await plugin.snapshots(ctx)] == [made[2]]
    assert (await plugin.retain(ctx, RetentionPolicy())).removed == []


async def test_snapshot_times_are_the_plans_local_time(tmp_path: Path,
                                                      repository: Path) -> None:
    # restic records a snapshot's time in its TZ and `forget --keep-daily` counts the days of
    # those times: run in the plan's zone, restic's days are the plan's days, as for folders.
    source = write_tree(tmp_path / "src", {"a.txt": "1"})
    ctx = context("restic.backup", tmp_path / "out", **_options(repository, source)
                  ).model_copy(update={"timezone": "Asia/Kathmandu"})  # UTC+05:45
    await plugin.backup(ctx)
    (source / "a.txt").write_text("2")
    await plugin.backup(ctx)
    listed = await plugin.snapshots(ctx)
    assert [s["time"][-6:] for s in listed] == ["+05:45", "+05:45"]
    # keep-daily counts the snapshot just made: both are of the same day, one stays.
    retained = await plugin.retain(ctx, RetentionPolicy(keep_daily=1))
    assert len(retained.removed) == 1 and len(retained.kept) == 1


async def test_over_ssh_restic_runs_on_the_target(tmp_path: Path, repository: Path,
                                                  sshd: Sshd) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "remote"})
    ctx = context("restic.backup", tmp_path / "out", target=sshd.target("web-1"),
                  **_options(repository, source)
                  ).model_copy(update={"timezone": "Asia/Kathmandu"})
    result = await plugin.backup(ctx)
    assert [f.path for f in result.files] == [f"{source}/a.txt"]
    await plugin.verify(ctx, result)
    listed = await plugin.snapshots(ctx)
    assert [s["hostname"] for s in listed] == ["web-1"]
    assert listed[0]["time"].endswith("+05:45")  # TZ reaches restic on the target too

    down = context("restic.backup", tmp_path / "out", target=unreachable_target(),
                   **_options(repository, source))
    with pytest.raises(TargetUnreachable):
        await plugin.backup(down)


def test_forget_output_is_read() -> None:
    out = ('[{"tags":null,"host":"h","paths":["/s"],"keep":[{"id":"aaaaaaaa11","short_id":'
           '"aaaaaaaa"}],"remove":[{"id":"bbbbbbbb22","short_id":"bbbbbbbb"},{"id":'
           '"cccccccc33"}]}]\n')
    result = forget_result(out)
    assert result.kept == ["aaaaaaaa"] and result.removed == ["bbbbbbbb", "cccccccc"]
