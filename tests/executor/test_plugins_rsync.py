"""The rsync plugin against the real rsync: locally and over ssh to a real sshd."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from services.executor.plugins.api import (
    BackupFailed,
    BadOptions,
    DiscoveryFailed,
    TargetUnreachable,
    VerificationFailed,
    items_for,
)
from services.executor.plugins.rsync import (
    RsyncPlugin,
    differences,
    parse_itemized,
    parse_stats,
    transfer_errors,
)
from tests.executor.support import Sshd, context, unreachable_target, write_tree

plugin = RsyncPlugin()
FILES: dict[str, str | bytes] = {"a.txt": "hello", "sub/b.bin": b"\x00" * 5000,
                                 "sub/deeper/c d.txt": "spaces in name"}


def _corrupt_keeping_size_and_time(path: Path) -> None:
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


async def test_a_local_backup_lists_every_file_with_stats_and_verifies(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", FILES)
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-48-00-000",
                  source=str(source))

    result = await plugin.backup(ctx)

    assert sorted(f.path for f in result.files) == sorted(FILES)
    sizes = {f.path: f.size for f in result.files}
    assert sizes == {"a.txt": 5, "sub/b.bin": 5000, "sub/deeper/c d.txt": 14}
    assert all(f.transferred and f.checksum and f.checksum.startswith("xxh128:")
               for f in result.files)
    assert result.files_transferred == 3
    assert result.bytes == result.total_bytes == 5019
    assert result.transfer_errors == []
    assert result.facts["rsync_version"].startswith("rsync")
    assert (ctx.output / "sub/deeper/c d.txt").read_text() == "spaces in name"
    verified = await plugin.verify(ctx, result)
    assert verified.checked == 3


async def test_the_next_backup_is_a_full_tree_hard_linked_to_the_previous(
        tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", FILES)
    series = tmp_path / "series"
    first = context("rsync.sync", series / "2026-11-30-22-00-00-000", source=str(source))
    await plugin.backup(first)
    (source / "a.txt").write_text("changed!")
    second = context("rsync.sync", series / "2026-11-30-23-00-00-000", source=str(source))

    result = await plugin.backup(second)

    transferred = {f.path for f in result.files if f.transferred}
    assert transferred == {"a.txt"}
    assert {f.path for f in result.files} == set(FILES)
    assert result.files_transferred == 1 and result.bytes == len("changed!")
    assert result.facts["link_dest"] == str(first.output)
    # Never overwritten: the first backup still has the old content; unchanged files share
    # their inode.
    assert (first.output / "a.txt").read_text() == "hello"
    assert (second.output / "a.txt").read_text() == "changed!"
    assert (first.output / "sub/b.bin").stat().st_ino == (second.output / "sub/b.bin").stat(
        ).st_ino
    await plugin.verify(second, result)


async def test_a_backup_refuses_an_output_folder_that_holds_files(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", FILES)
    output = write_tree(tmp_path / "series" / "2026-11-30-22-00-00-000", {"old": "keep me"})
    with pytest.raises(BackupFailed, match="never overwrites"):
        await plugin.backup(context("rsync.sync", output, source=str(source)))
    assert (output / "old").read_text() == "keep me"


async def test_a_file_corrupted_after_the_transfer_fails_verification(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", FILES)
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(source))
    result = await plugin.backup(ctx)
    _corrupt_keeping_size_and_time(ctx.output / "sub/b.bin")
    (ctx.output / "stray.txt").write_text("not in the source")
    (ctx.output / "a.txt").unlink()

    with pytest.raises(VerificationFailed) as failed:
        await plugin.verify(ctx, result)

    assert sorted(failed.value.problems) == [
        "differs from the source: a.txt", "differs from the source: sub/b.bin",
        "only in the backup: stray.txt"]
    assert "3 file(s) do not match" in failed.value.reason


async def test_a_missing_source_fails_with_rsyncs_errors(tmp_path: Path) -> None:
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(tmp_path / "nowhere"))
    with pytest.raises(BackupFailed) as failed:
        await plugin.backup(ctx)
    assert "partial transfer (exit 23)" in failed.value.reason
    assert failed.value.result is not None
    assert any("nowhere" in e for e in failed.value.result.transfer_errors)


async def test_a_partial_transfer_may_be_accepted(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", FILES)
    # A second source that does not exist: rsync copies the first and exits 23.
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(source), partial_ok=True, args=[str(tmp_path / "gone") + "/"])
    result = await plugin.backup(ctx)
    assert {f.path for f in result.files} == set(FILES)
    assert len(result.transfer_errors) == 1 and "gone" in result.transfer_errors[0]


async def test_files_vanishing_during_the_transfer_are_a_warning(tmp_path: Path) -> None:
    # rsync lists both files, then sends "a" slowly; "b" is gone when its turn comes (exit 24).
    source = write_tree(tmp_path / "src", {"a": b"x" * (2 * 1024 * 1024), "b": "short-lived"})
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(source), bwlimit="1m")
    task = asyncio.create_task(plugin.backup(ctx))
    for _ in range(100):  # until rsync is writing "a" (its temporary file appears)
        await asyncio.sleep(0.05)
        if _entries(ctx.output):
            break
    (source / "b").unlink()
    result = await task
    assert result.warnings == ["some source files vanished during the transfer"]
    assert [f.path for f in result.files] == ["a"]
    assert any("vanished" in e and "b" in e for e in result.transfer_errors)


async def test_items_are_the_entries_of_the_source_matching_the_pattern(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"home/ann/x": "1", "home/bob/y": "2", "etc/z": "3",
                                           "readme": "r"})
    options = {"source": str(source)}
    target = context("rsync.sync", tmp_path / "o").target

    assert [i.name for i in await items_for(plugin, target, "rsync.sync", "*e*", options)] == [
        "etc", "home", "readme"]
    assert [i.name for i in await items_for(plugin, target, "rsync.sync", None, options)] == [
        "all"]
    assert await items_for(plugin, target, "rsync.sync", "nothing*", options) == []
    with pytest.raises(DiscoveryFailed):
        await items_for(plugin, target, "rsync.sync", "*", {"source": str(tmp_path / "no")})

    home = (await items_for(plugin, target, "rsync.sync", "home", options))[0]
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  item="home", source=str(source)).model_copy(update={"item": home})
    result = await plugin.backup(ctx)
    assert sorted(f.path for f in result.files) == ["ann/x", "bob/y"]


def test_options_are_checked_with_the_field_named() -> None:
    with pytest.raises(BadOptions) as bad:
        plugin.options("rsync.sync", {"source": "/x", "exlcude": ["*.tmp"]})
    assert bad.value.errors[0]["loc"] == "exlcude"
    with pytest.raises(BadOptions, match="source"):
        plugin.options("sync", {})


async def test_cancelling_a_backup_stops_rsync(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"big": b"x" * (8 * 1024 * 1024)})
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(source), bwlimit="64k")
    task = asyncio.create_task(plugin.backup(ctx))
    await asyncio.sleep(1.0)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 6
    assert not _running("rsync", str(ctx.output))


async def test_a_timeout_fails_the_backup(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"big": b"x" * (4 * 1024 * 1024)})
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  source=str(source), bwlimit="64k", timeout=1)
    with pytest.raises(BackupFailed, match="did not finish within 1 s"):
        await plugin.backup(ctx)
    assert not _running("rsync", str(ctx.output))


def _entries(folder: Path) -> list[str]:
    return os.listdir(folder) if folder.is_dir() else []


def _running(program: str, argument: str) -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(program.encode()) and any(
                argument.encode() in a for a in argv):
            return True
    return False


# --- over ssh --------------------------------------------------------------------------------


async def test_a_backup_over_ssh_transfers_lists_and_verifies(tmp_path: Path,
                                                              sshd: Sshd) -> None:
    source = write_tree(tmp_path / "remote-src", FILES)
    target = sshd.target()
    await plugin.probe(target, "rsync.sync", {"source": str(source)})
    series = tmp_path / "series"
    first = context("rsync.sync", series / "2026-11-30-22-00-00-000", target=target,
                    source=str(source))

    result = await plugin.backup(first)

    assert sorted(f.path for f in result.files) == sorted(FILES)
    assert result.bytes == 5019
    assert result.facts["host_os"].startswith("Linux")
    assert result.facts["remote_rsync_version"].startswith("rsync")
    await plugin.verify(first, result)

    second = context("rsync.sync", series / "2026-11-30-23-00-00-000", target=target,
                     source=str(source))
    again = await plugin.backup(second)
    assert again.files_transferred == 0 and not any(f.transferred for f in again.files)
    _corrupt_keeping_size_and_time(second.output / "a.txt")
    with pytest.raises(VerificationFailed, match=r"a\.txt"):
        await plugin.verify(second, again)

    items = await items_for(plugin, target, "rsync.sync", "s*", {"source": str(source)})
    assert [(i.name, i.facts["type"]) for i in items] == [("sub", "folder")]


async def test_an_unreachable_target_is_reported_as_such(tmp_path: Path) -> None:
    target = unreachable_target()
    with pytest.raises(TargetUnreachable, match=r"ssh to nobody@127\.0\.0\.1 failed"):
        await plugin.probe(target, "rsync.sync", {"source": "/x"})
    ctx = context("rsync.sync", tmp_path / "series" / "2026-11-30-22-00-00-000",
                  target=target, source="/x")
    with pytest.raises(TargetUnreachable, match="exit 255"):
        await plugin.backup(ctx)


# --- reading rsync's output ------------------------------------------------------------------


def test_itemized_lines_become_files() -> None:
    sent = parse_itemized(">f+++++++++|6|6bba86c7e069f56d5a10b435f1c8e49c|dir/a b.txt")
    assert sent is not None and sent.path == "dir/a b.txt" and sent.size == 6
    assert sent.checksum == "xxh128:6bba86c7e069f56d5a10b435f1c8e49c" and sent.transferred
    linked = parse_itemized("hf         |100|                                |c|d.txt")
    assert linked is not None and linked.path == "c|d.txt" and not linked.transferred
    assert linked.checksum is None
    assert parse_itemized("cd+++++++++|4096|                                |sub/") is None
    assert parse_itemized("sending incremental file list") is None
    escaped = parse_itemized(">f+++++++++|1|00|tab\\#011name")
    assert escaped is not None and escaped.path == "tab\tname"


def test_stats_are_read_with_thousands_separators() -> None:
    stats = parse_stats("Number of files: 1,205 (reg: 1,200, dir: 5)\n"
                        "Number of regular files transferred: 1,200\n"
                        "Total file size: 1,073,741,824 bytes\n"
                        "Total transferred file size: 6 bytes\n")
    assert stats == {"Number of files": 1205, "Number of regular files transferred": 1200,
                     "Total file size": 1073741824, "Total transferred file size": 6}


def test_transfer_errors_and_differences_are_picked_out() -> None:
    stderr = ('rsync: [sender] send_files failed to open "/s/x": Permission denied (13)\n'
              'file has vanished: "/s/y"\n'
              "rsync error: some files/attrs were not transferred (code 23) at main.c(1338)\n")
    assert transfer_errors(stderr) == [
        'rsync: [sender] send_files failed to open "/s/x": Permission denied (13)',
        'file has vanished: "/s/y"']
    assert differences(".d..t...... ./\n>fc........ a.txt\n*deleting   extra\n"
                       ".f..t...... touched\n>f+++++++++ new\n") == [
        "differs from the source: a.txt", "only in the backup: extra",
        "differs from the source: new"]


async def test_discovery_over_ssh_keeps_a_name_with_a_newline_one_item(tmp_path: Path,
                                                                      sshd: Sshd) -> None:
    """Names are read NUL-separated: a file named ``x\\nd 0 ..`` must not fake an item ``..``
    (which would make the task's source the parent of the configured one)."""
    source = write_tree(tmp_path / "remote-src", {"db/dump.sql": "1", "notes.txt": "2"})
    (source / "x\nd 0 ..").write_text("3")

    found = await plugin.discover(sshd.target(), "rsync.sync", {"source": str(source)})

    assert sorted(item.name for item in found) == ["db", "notes.txt", "x\nd 0 .."]
    assert {item.name: item.facts["type"] for item in found}["db"] == "folder"
