"""Running a tool as a subprocess: with a timeout, cancellable, its output capped.

Every plugin runs its tool through :func:`run`. The process gets its own session (process
group), so a timeout or a cancelled asyncio task ends the tool *and* whatever it started (``ssh``
under ``rsync``, a script's children): SIGTERM to the group, SIGKILL after ``KILL_GRACE``
seconds. Output is read as it comes: each stdout line can go to ``on_line`` (rsync's per-file
list, restic's JSON lines) while only ``limit`` characters of each stream are kept (the first and
last halves, with a marker saying how much was left out), so a chatty tool cannot fill memory.

The environment given is added to the executor's own; it is never logged nor put into an error
message (restic's password, ``PGPASSWORD`` travel there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Characters of stdout and of stderr kept by default.
OUTPUT_LIMIT = 64 * 1024
# Seconds between SIGTERM and SIGKILL when a run is stopped.
KILL_GRACE = 5.0
_CHUNK = 64 * 1024


class CommandTimedOut(Exception):
    """The command ran longer than its timeout and was stopped."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str, stderr: str) -> None:
        super().__init__(f"{Path(argv[0]).name} did not finish within {timeout:g} s")
        self.argv = list(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


class CommandNotFound(Exception):
    """The program to run does not exist (not installed, or not on PATH)."""


@dataclass(frozen=True)
class Completed:
    """A finished command: its exit status and (capped) output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or of stdout when stderr is empty): what explains a
        failure."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


class CappedText:
    """Text kept up to ``limit`` characters: the first half, a marker, the last half."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._head: list[str] = []
        self._head_size = 0
        self._tail = ""
        self._dropped = 0

    def add(self, text: str) -> None:
        half = self.limit // 2
        if self._head_size < half:
            take = text[: half - self._head_size]
            self._head.append(take)
            self._head_size += len(take)
            text = text[len(take):]
        if not text:
            return
        joined = self._tail + text
        if len(joined) > self.limit - half:
            cut = len(joined) - (self.limit - half)
            self._dropped += cut
            joined = joined[cut:]
        self._tail = joined

    def text(self) -> str:
        head = "".join(self._head)
        if self._dropped:
            return f"{head}\n… {self._dropped} characters left out …\n{self._tail}"
        return head + self._tail


async def _pump(stream: asyncio.StreamReader, kept: CappedText,
                on_line: Callable[[str], None] | None, sink: Path | None) -> None:
    partial = b""
    handle = sink.open("wb") if sink is not None else None
    try:
        while chunk := await stream.read(_CHUNK):
            if handle is not None:
                handle.write(chunk)
                continue
            kept.add(chunk.decode("utf-8", "replace"))
            if on_line is not None:
                partial += chunk
                *lines, partial = partial.split(b"\n")
                for line in lines:
                    on_line(line.decode("utf-8", "replace"))
        if on_line is not None and partial:
            on_line(partial.decode("utf-8", "replace"))
    finally:
        if handle is not None:
            handle.close()


def _signal_group(proc: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """End the process and its group: SIGTERM, then SIGKILL after the grace."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE)
        except TimeoutError:
            pass
    # Children that ignored SIGTERM (or outlived their parent) go too.
    _signal_group(proc, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()


async def run(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
    limit: int = OUTPUT_LIMIT,
    on_line: Callable[[str], None] | None = None,
    stdout_to: Path | None = None,
) -> Completed:
    """Run ``argv`` (no shell) and return its exit status and capped output; a non-zero exit
    is the caller's to judge. ``stdout_to`` writes stdout to that file instead (a dump
    streamed over ssh). Raises :class:`CommandTimedOut` after ``timeout`` seconds and
    :class:`CommandNotFound` when the program does not exist; cancelling the awaiting task
    stops the process group and re-raises ``CancelledError``."""
    started = time.monotonic()
    full_env = {**os.environ, **(env or {})}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=full_env, cwd=None if cwd is None else str(cwd),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]}: not found ({exc.strerror})") from exc
    out, err = CappedText(limit), CappedText(limit)
    assert proc.stdout is not None and proc.stderr is not None

    async def communicate() -> int:
        if stdin is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()
        await asyncio.gather(_pump(proc.stdout, out, on_line, stdout_to),  # type: ignore[arg-type]
                             _pump(proc.stderr, err, None, None))  # type: ignore[arg-type]
        return await proc.wait()

    try:
        returncode = await asyncio.wait_for(communicate(), timeout)
    except TimeoutError:
        await _stop(proc)
        raise CommandTimedOut(argv, timeout or 0, out.text(), err.text()) from None
    except BaseException:
        # Cancelled (or the line callback failed): the tool must not outlive its task.
        await asyncio.shield(_stop(proc))
        raise
    return Completed(tuple(argv), returncode, out.text(), err.text(),
                     time.monotonic() - started)
