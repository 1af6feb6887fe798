"""Pre/post plan and task scripts: a shell command with the execution's variables, a timeout,
and its output kept (capped) for the history."""

from __future__ import annotations

import time
from collections.abc import Mapping

from services.executor.executions import ScriptRun
from services.executor.plans.models import Script
from services.executor.plugins import process


async def run_script(name: str, script: Script, env: Mapping[str, str], *,
                     default_timeout: float, limit: int) -> ScriptRun:
    """Run ``script.run`` with ``/bin/sh -c``; exit status > 0 is the caller's to judge. A script
    that runs out of time is stopped (with whatever it started) and has no exit status."""
    timeout = script.timeout if script.timeout is not None else default_timeout
    started = time.monotonic()
    try:
        done = await process.run(["/bin/sh", "-c", script.run], timeout=timeout, env=env,
                                 limit=limit // 2)
    except process.CommandTimedOut as exc:
        output = _joined(exc.stdout, exc.stderr) + f"\n[stopped after {timeout:g} s]"
        return ScriptRun(name, script.run, None, output[-limit:], time.monotonic() - started,
                         timed_out=True)
    except process.CommandNotFound as exc:
        return ScriptRun(name, script.run, None, str(exc), time.monotonic() - started)
    return ScriptRun(name, script.run, done.returncode, _joined(done.stdout, done.stderr),
                     done.duration)


def _joined(stdout: str, stderr: str) -> str:
    if stdout and stderr:
        return f"{stdout.rstrip()}\n{stderr}"
    return stdout or stderr


def failure(run: ScriptRun) -> str:
    """Why a script counts as failed (for the task's or plan's error message)."""
    if run.timed_out:
        return f"{run.name} script did not finish in time"
    if run.exit_code is None:
        return f"{run.name} script could not start: {run.output}"
    last = run.output.strip().splitlines()[-1:] if run.output.strip() else []
    said = f": {last[0][:200]}" if last else ""
    return f"{run.name} script exited {run.exit_code}{said}"
