"""How plugins run tools: timeouts and cancellation end the whole process group, output is
capped, lines stream to the caller, secrets in the environment stay out of errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest
import uvloop

from services.executor.plugins.process import (
    CappedText,
    CommandNotFound,
    CommandTimedOut,
    run,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(
        f"/proc/{pid}").exists() else "X"
    return status != "Z"


def _pid_in(pidfile: Path) -> int | None:
    text = pidfile.read_text().strip() if pidfile.exists() else ""
    return int(text) if text else None


async def _child_pid(pidfile: Path) -> int:
    for _ in range(100):
        if (pid := _pid_in(pidfile)) is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the script did not start its child")


async def test_cancelling_stops_the_tool_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    task = asyncio.create_task(run(["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"]))
    child = await _child_pid(pidfile)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert not _alive(child)


async def test_a_timeout_stops_even_a_tool_ignoring_sigterm(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr("services.executor.plugins.process.KILL_GRACE", 0.5)
    pidfile = tmp_path / "child"
    script = f"trap '' TERM; echo started; sleep 60 & echo $! > {pidfile}; wait; wait"
    with pytest.raises(CommandTimedOut) as timed_out:
        await run(["/bin/sh", "-c", script], timeout=0.5)
    assert timed_out.value.stdout.strip() == "started"
    assert str(timed_out.value) == "sh did not finish within 0.5 s"
    assert not _alive(int(pidfile.read_text()))


async def test_output_is_capped_but_every_line_reaches_the_callback() -> None:
    lines: list[str] = []
    done = await run(["/bin/sh", "-c", "seq 1 100000"], limit=1000, on_line=lines.append)
    assert lines == [str(n) for n in range(1, 100001)]
    assert done.ok and len(done.stdout) < 1100
    assert done.stdout.startswith("1\n2\n") and done.stdout.endswith("99999\n100000\n")
    assert "characters left out" in done.stdout


async def test_stdout_can_go_to_a_file_and_stdin_comes_from_bytes(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    done = await run(["cat"], stdin=b"\x00binary\xff" * 1000, stdout_to=target)
    assert done.ok and done.stdout == ""
    assert target.read_bytes() == b"\x00binary\xff" * 1000


async def test_exit_status_environment_and_missing_programs() -> None:
    done = await run(["/bin/sh", "-c", 'echo "$SECRET" | wc -c; echo oops >&2; exit 4'],
                     env={"SECRET": "hunter2"})
    assert (done.returncode, done.stdout.strip(), done.tail()) == (4, "8", "oops")
    assert "hunter2" not in repr(done)
    with pytest.raises(CommandNotFound, match="no-such-tool"):
        await run(["no-such-tool"])


def test_capped_text_keeps_head_and_tail() -> None:
    text = CappedText(10)
    for chunk in ["abc", "defgh", "ijklmnop", "qrst"]:
        text.add(chunk)
    assert text.text() == "abcde\n… 10 characters left out …\npqrst"
    short = CappedText(10)
    short.add("abc")
    assert short.text() == "abc"


async def test_a_killed_tool_reports_the_signal() -> None:
    done = await run(["/bin/sh", "-c", "kill -KILL $$"])
    assert done.returncode == -signal.SIGKILL


def test_the_same_under_uvloop(tmp_path: Path) -> None:
    """``backstop up`` and ``backstop run`` run the executor on uvloop."""

    async def scenario() -> tuple[int, str, bool]:
        done = await run(["/bin/sh", "-c", "cat; echo err >&2; exit 2"], stdin=b"in\n" * 3)
        pidfile = tmp_path / "child"
        task = asyncio.create_task(run(["/bin/sh", "-c",
                                        f"sleep 60 & echo $! > {pidfile}; wait"]))
        child = await _child_pid(pidfile)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        for _ in range(300):  # many short runs: no descriptor is closed twice
            assert (await run(["true"])).ok
        return done.returncode, done.stdout + done.stderr, _alive(child)

    assert uvloop.run(scenario()) == (2, "in\nin\nin\nerr\n", False)
