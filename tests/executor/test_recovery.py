"""Crash safety, with a real executor process killed by SIGKILL in the middle of a backup of a
quiesced target: the next replica unquiesces the target (the intent was durable before the
quiesce) and ends the execution ``interrupted``, reported as a failed run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from services.executor.recovery import DurableIntents, Replicas
from services.executor.triggers import manual_trigger
from shared.bus import Bus
from shared.db import Database
from shared.events import RunReported
from tests.executor.replicas import apply, ended, execution, published, replica
from tests.support import eventually, make_account, tenant_of


def quiesced_plan(destination: Path, marker: Path, pidfile: Path) -> str:
    return f"""
kind: Target
metadata: {{name: vm-1}}
---
kind: Plan
metadata: {{name: images}}
spec:
  account: MSP/Acme/servers
  destination: {{path: '{destination}'}}
  activities:
    - action: command.run
      targets: vm-1
      quiesce: {{timeout: 5, grace: 1}}
      options:
        quiesce: 'touch {marker}'
        quiesced: 'test -e {marker}'
        unquiesce: 'rm -f {marker}'
        script: 'echo $$ > {pidfile}; exec sleep 120'
"""


def exists(path: Path) -> bool:
    return path.exists()


async def test_a_killed_executor_leaves_no_target_quiesced_and_no_execution_running(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    marker, pidfile = tmp_path / "quiesced", tmp_path / "backup.pid"
    apply(sqlite_db, quiesced_plan(tmp_path / "images", marker, pidfile))
    env = {**os.environ, "BACKSTOP_NATS_URL": nats_url, "BACKSTOP_DATABASE_URL": sqlite_db.url,
           "BACKSTOP_OPS_PORT": "0", "BACKSTOP_DATA_DIR": str(tmp_path),
           "BACKSTOP_EXECUTOR_LEASE_SECONDS": "3", "BACKSTOP_LOG_FORMAT": "text"}
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "run", "executor", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    backup_pid = None
    try:
        presence = Replicas(bus, "test")
        [doomed_id] = await eventually(presence.alive, timeout=20)
        trigger = manual_trigger("images", tenant_of(issued))
        await bus.publish(trigger)
        # Quiesced, and the backup running inside the quiesce.
        await eventually(lambda: exists(pidfile) and exists(marker), timeout=20)
        backup_pid = int(pidfile.read_text())
        row = execution(sqlite_db, trigger.execution_id)
        assert row is not None and row.status == "running" and row.runner == doomed_id
        [(recorded_by, intent)] = await DurableIntents(bus, "test").open()
        assert (recorded_by, intent.target) == (doomed_id, "vm-1")

        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
        os.kill(backup_pid, signal.SIGKILL)  # its machine died with it
        assert exists(marker)  # left quiesced

        async with replica(nats_url, sqlite_db) as survivor:
            # The dead replica's presence lapses (3 s), then a sweep finishes its work.
            await eventually(lambda: not exists(marker), timeout=15)
            row = await ended(sqlite_db, trigger.execution_id, timeout=15)
            assert row.status == "interrupted"
            assert "died" in (row.error or "")
            assert await DurableIntents(bus, "test").open() == []
            assert doomed_id not in await presence.alive()
            assert survivor.replica_id in await presence.alive()
        runs = [e for e in await published(bus, "backstop.ingest.>")
                if isinstance(e, RunReported) and e.job == "images"]
        assert [r.status for r in runs] == ["started", "failure"]
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
        if backup_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(backup_pid, signal.SIGKILL)


async def test_a_stopping_replica_unquiesces_and_ends_its_executions_interrupted(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    marker, pidfile = tmp_path / "quiesced", tmp_path / "backup.pid"
    apply(sqlite_db, quiesced_plan(tmp_path / "images", marker, pidfile))
    trigger = manual_trigger("images", tenant_of(issued))
    async with replica(nats_url, sqlite_db):
        await bus.publish(trigger)
        await eventually(lambda: exists(pidfile) and exists(marker), timeout=20)
    # Stopped (SIGTERM does the same): the running task was cancelled, unquiesced, reported.
    assert not exists(marker)
    row = execution(sqlite_db, trigger.execution_id)
    assert row is not None and row.status == "interrupted"
    assert await DurableIntents(bus, "test").open() == []
    runs = [e for e in await published(bus, "backstop.ingest.>")
            if isinstance(e, RunReported) and e.job == "images"]
    assert [r.status for r in runs] == ["started", "failure"]
