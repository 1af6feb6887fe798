"""The command plugin: real scripts, their files collected, verified, quiesced."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.executor.plugins.api import (
    BackupFailed,
    QuiesceFailed,
    RetentionPolicy,
    VerificationFailed,
)
from services.executor.plugins.command import CommandPlugin
from tests.executor.support import context, stamp, write_tree

plugin = CommandPlugin()

SCRIPT = """
mkdir -p "$BACKSTOP_OUTPUT/images"
printf 'disk of %s' "$BACKSTOP_TARGET" > "$BACKSTOP_OUTPUT/images/$BACKSTOP_ITEM.img"
echo "plan=$BACKSTOP_PLAN item=$BACKSTOP_ITEM extra=$EXTRA"
echo "to stderr" >&2
"""


async def test_the_files_a_script_writes_are_the_backup(tmp_path: Path) -> None:
    ctx = context("command.run", tmp_path / "series" / "2026-11-30-22-00-00-000", item="vm1",
                  script=SCRIPT, env={"EXTRA": "x"}, expect=["images/*.img"])

    result = await plugin.backup(ctx)

    assert [(f.path, f.size) for f in result.files] == [("images/vm1.img", len("disk of "
                                                                               "localhost"))]
    assert result.files[0].checksum and result.files[0].checksum.startswith("sha256:")
    assert result.bytes == len("disk of localhost")
    assert "plan=test item=vm1 extra=x" in result.log and "to stderr" in result.log
    verified = await plugin.verify(ctx, result)
    assert verified.method == "existence and size" and verified.checked == 1


async def test_a_script_exiting_above_zero_fails_the_task(tmp_path: Path) -> None:
    ctx = context("command.run", tmp_path / "out",
                  script='echo partial > "$BACKSTOP_OUTPUT/p"; echo "disk full" >&2; exit 3')
    with pytest.raises(BackupFailed, match="exited with 3: disk full") as failed:
        await plugin.backup(ctx)
    assert failed.value.result is not None
    assert [f.path for f in failed.value.result.files] == ["p"]


async def test_an_argv_script_runs_without_a_shell(tmp_path: Path) -> None:
    ctx = context("command.run", tmp_path / "out",
                  script=["/bin/cp", "/etc/hostname", str(tmp_path / "out" / "host name")])
    result = await plugin.backup(ctx)
    assert [f.path for f in result.files] == ["host name"]


async def test_verification_checks_existence_size_and_expectations(tmp_path: Path) -> None:
    ctx = context("command.run", tmp_path / "out", expect=["*.img"],
                  script='echo 12345 > "$BACKSTOP_OUTPUT/a.img"; '
                         'echo x > "$BACKSTOP_OUTPUT/b"')
    result = await plugin.backup(ctx)
    (ctx.output / "a.img").write_text("1")
    (ctx.output / "b").unlink()
    with pytest.raises(VerificationFailed) as failed:
        await plugin.verify(ctx, result)
    assert failed.value.problems == ["a.img has 1 bytes, 6 were written", "b is missing"]

    empty = context("command.run", tmp_path / "empty", script="true", expect=["*.img"])
    nothing = await plugin.backup(empty)
    with pytest.raises(VerificationFailed) as failed:
        await plugin.verify(empty, nothing)
    assert failed.value.problems == [f"the script wrote no file into {empty.output}",
                                     "no file matching *.img was written"]


async def test_a_script_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    ctx = context("command.run", tmp_path / "out", timeout=0.5,
                  script=f"sleep 30 & wait; touch {marker}")
    with pytest.raises(BackupFailed, match=r"did not finish within 0\.5 s"):
        await plugin.backup(ctx)
    await asyncio.sleep(0.3)
    assert not marker.exists()


async def test_quiesce_commands_freeze_and_thaw(tmp_path: Path) -> None:
    flag = tmp_path / "frozen"
    ctx = context("command.run", tmp_path / "out", script="true",
                  quiesce=f"touch {flag}", unquiesce=f"rm {flag}", quiesced=f"test -e {flag}")
    assert plugin.quiesces
    assert not await plugin.is_quiesced(ctx)
    await plugin.quiesce(ctx)
    assert flag.exists() and await plugin.is_quiesced(ctx)
    await plugin.unquiesce(ctx)
    assert not flag.exists() and not await plugin.is_quiesced(ctx)
    with pytest.raises(QuiesceFailed, match="unquiesce exited with 1"):
        await plugin.unquiesce(ctx)

    slow = context("command.run", tmp_path / "out", script="true", quiesce="sleep 10",
                   quiesce_timeout=0.3)
    with pytest.raises(QuiesceFailed, match="did not finish"):
        await plugin.quiesce(slow)
    with pytest.raises(QuiesceFailed, match="no quiesce command"):
        await plugin.quiesce(context("command.run", tmp_path / "out", script="true"))


async def test_retention_removes_the_folders_the_policy_does_not_keep(tmp_path: Path) -> None:
    series = tmp_path / "series"
    start = datetime(2026, 11, 1, 22, tzinfo=UTC)
    for day in range(10):
        write_tree(series / stamp(start + timedelta(days=day)), {"f": str(day)})
    current = series / stamp(start + timedelta(days=10))
    ctx = context("command.run", current, script="true")
    write_tree(current, {"f": "new"})

    result = await plugin.retain(ctx, RetentionPolicy(keep_last=3))

    # Three in all, the backup just made included (restic's --keep-last).
    assert sorted(p.name for p in series.iterdir()) == [
        stamp(start + timedelta(days=d)) for d in (8, 9, 10)]
    assert len(result.removed) == 8 and str(current) in result.kept
