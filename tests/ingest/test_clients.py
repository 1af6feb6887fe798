"""Third-party clients as their current releases really talk to the ping API.

borgmatic 2.1.10 is installed (test dependency) and its own monitoring code runs: its
``Monitoring_hooks`` and Healthchecks hook send real HTTP requests, through ``requests``, to the
ingest app served by uvicorn over a real nats-server. runitor (Go) cannot run here: its requests
are rebuilt as its v1.4.1 source builds them (``internal/api.go``, ``cmd/runitor/main.go``). The
curl and restic examples of docs/ingest.md run as written (with this server's address), with the
curl, jq and restic installed here. What docs/ingest.md says about these clients is what these
tests show.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from subprocess import CalledProcessError
from typing import Any

import pytest
import uvicorn
from borgmatic.commands.borgmatic import Monitoring_hooks

from services.evaluator.clock import FakeClock
from services.evaluator.engine import Engine
from services.evaluator.facts import AccountFacts
from services.evaluator.policies import PolicyBook
from shared.events import Event, RunLogged, RunReported
from shared.natsd import free_port
from tests.ingest.support import Ingest, stored_events
from tests.test_docs import ROOT, shell_blocks

BORGMATIC = "2.1.10"
RUNITOR_USER_AGENT = "runitor/v1.4.1 (linux-amd64; +https://bdd.fi/x/runitor)"
DOC = ROOT / "docs" / "ingest.md"


@dataclass(frozen=True)
class Seen:
    """One request as it reached the server."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int


def recording(app: Any, seen: list[Seen]) -> Any:
    """``app`` behind a tap that keeps every request and the status answered."""
    async def tapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body, status = bytearray(), []

        async def tee_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            body.extend(message.get("body", b""))
            return message

        async def tee_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await app(scope, tee_receive, tee_send)
        seen.append(Seen(scope["method"], scope["path"], scope["query_string"].decode(),
                         {k.decode(): v.decode() for k, v in scope["headers"]}, bytes(body),
                         status[0]))
    return tapped


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` on a real port, in this event loop (the bus lives here)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def root_logging() -> Iterator[None]:
    """borgmatic's hooks change the root logger's level; put it back."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def borgmatic_run(hook: dict[str, Any], log_lines: list[str], *, fails: bool) -> None:
    """One `borgmatic create` as borgmatic wraps its actions: start, the work, log, finish/fail."""
    config = {"healthchecks": hook}
    try:
        with Monitoring_hooks("/etc/borgmatic/config.yaml", config,
                              {"create": argparse.Namespace()},
                              argparse.Namespace(dry_run=False)):
            for line in log_lines:
                logging.getLogger("borgmatic.actions.create").info(line)
            if fails:
                raise CalledProcessError(2, ["borg", "create"])
    except CalledProcessError:
        if not fails:
            raise


def runs_paired(ingest: Ingest, events: list[Event]) -> list[bool]:
    """Feeds the events to the evaluator's engine; after each run report, is a run open?"""
    clock = FakeClock(events[0].occurred_at)
    engine = Engine(PolicyBook(), clock)
    tenant = ingest.a.account.tenant()
    engine.load([], [AccountFacts(tenant=tenant, created_at=clock.now())])
    running = []
    for event in events:
        clock.set(max(clock.now(), event.occurred_at))
        engine.apply(event)
        if isinstance(event, RunReported):
            running.append(engine.jobs[(tenant.account, event.job)].running_since is not None)
    clock.advance(timedelta(days=3))
    assert [t.kind for t in engine.due() if t.kind == "run_too_long"] == []
    return running


async def test_borgmatic_2_1_10_pings_pair_into_runs_without_a_run_id(
    ingest: Ingest, root_logging: None, caplog: pytest.LogCaptureFixture,
) -> None:
    from importlib.metadata import version
    assert version("borgmatic") == BORGMATIC
    seen: list[Seen] = []
    key = ingest.a.ping_key
    async with serving(recording(ingest.app, seen)) as url:
        ping_url = f"{url}/ping/{key}/backups"
        # First run: the job does not exist yet; create_slug and send_logs on; it succeeds.
        await asyncio.to_thread(
            borgmatic_run, {"ping_url": ping_url, "create_slug": True, "send_logs": True},
            ["Creating archive at repo::host-2026-11-23", "Duration: 5.02 seconds"], fails=False)
        # Second run: the configuration borgmatic defaults to (no logs, no create); it fails.
        await asyncio.to_thread(borgmatic_run, {"ping_url": ping_url}, ["borg: lock timeout"],
                                fails=True)

    assert not [r for r in caplog.records if "Healthchecks error" in r.getMessage()]
    # What borgmatic 2.1.10 sends: a POST per state, the log state before finish/fail, no rid,
    # ?create=1 on every URL when create_slug is on, and a User-Agent without a version.
    base = f"/ping/{key}/backups"
    assert [(s.method, s.path, s.query, s.status) for s in seen] == [
        ("POST", f"{base}/start", "create=1", 201), ("POST", f"{base}/log", "create=1", 200),
        ("POST", base, "create=1", 200),
        ("POST", f"{base}/start", "", 200), ("POST", f"{base}/log", "", 200),
        ("POST", f"{base}/fail", "", 200)]
    assert {s.headers["user-agent"] for s in seen} == {"borgmatic"}
    assert [s.body == b"" for s in seen] == [True, False, False, True, True, True]
    assert b"Creating archive at repo::host-2026-11-23\n" in seen[2].body

    events: list[Event] = await stored_events(ingest.bus)
    runs = [e for e in events if isinstance(e, RunReported)]
    assert [(r.job, r.status, r.run_id, r.client_name) for r in runs] == [
        ("backups", "started", None, "borgmatic"), ("backups", "success", None, "borgmatic"),
        ("backups", "started", None, "borgmatic"), ("backups", "failure", None, "borgmatic")]
    assert runs[1].log_excerpt == seen[2].body.decode()
    assert runs[3].log_excerpt is None  # send_logs is off by default in borgmatic 2.x
    logs = [e for e in events if isinstance(e, RunLogged)]
    assert [(log.run_id, log.log_excerpt == (s.body.decode() or None))
            for log, s in zip(logs, (seen[1], seen[4]), strict=True)] == [(None, True)] * 2
    # As in Healthchecks, a completion without rid closes the open run: each start is paired
    # with the finish or failure that follows it, and nothing is left running.
    assert runs_paired(ingest, events) == [True, False, True, False]


async def test_runitor_1_4_1_requests(ingest: Ingest) -> None:
    """runitor -api-url .../ping -ping-key KEY -slug nightly -create -- backup.sh (exit 2):
    a start with a fresh rid, then the exit status with the command's output, both POSTs."""
    rid = "5f0e7a0c-6a3b-4c1e-9d2f-1b8a4c3d2e1f"
    headers = {"User-Agent": RUNITOR_USER_AGENT, "Content-Type": "text/plain"}
    base = f"/ping/{ingest.a.ping_key}/nightly"
    start = await ingest.client.post(f"{base}/start?create=1&rid={rid}", headers=headers)
    assert (start.status_code, start.headers["Ping-Body-Limit"]) == (201, "10000")
    done = await ingest.client.post(f"{base}/2?create=1&rid={rid}", headers=headers,
                                    content=b"tar: /srv: Cannot open\n\n[runitor] exit status 2")
    assert done.status_code == 200
    runs = await stored_events(ingest.bus, RunReported)
    assert [(r.status, r.run_id, r.exit_code, r.client_name) for r in runs] == [
        ("started", rid, None, RUNITOR_USER_AGENT), ("failure", rid, 2, RUNITOR_USER_AGENT)]


def doc_example(containing: str) -> str:
    """The one shell example in docs/ingest.md that contains ``containing``."""
    (block,) = [block for _, block in shell_blocks(DOC) if containing in block]
    return block


async def bash(script: str, **env: str) -> tuple[int, str]:
    """Runs ``script`` with bash without blocking the event loop that serves ingest."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_the_curl_examples_report_runs(ingest: Ingest, tmp_path: Path) -> None:
    backup = tmp_path / "backup.sh"
    backup.write_text("#!/bin/sh\necho 'tar: /srv: Cannot open: Permission denied'\nexit 2\n")
    backup.chmod(0o755)
    async with serving(ingest.app) as url:
        def local(script: str) -> str:
            return (script.replace("https://backstop.example", url)
                    .replace("KEY", ingest.a.ping_key)
                    .replace("/usr/local/bin/backup.sh", str(backup))
                    .replace("/tmp/backup.log", str(tmp_path / "backup.log")))
        code, out = await bash(local(doc_example("PIPESTATUS")))
        assert code == 0, out
        # The cron line, without its five time fields, with a backup that succeeds.
        (cron,) = [line for line in doc_example("a cron line").splitlines()
                   if not line.startswith("#")]
        command = local(cron.split(maxsplit=5)[5]).replace(str(backup), "true")
        code, out = await bash(command)
        assert code == 0, out
    runs = await stored_events(ingest.bus, RunReported)
    assert [(r.job, r.status, r.exit_code) for r in runs] == [
        ("nightly-db", "started", None), ("nightly-db", "failure", 2),
        ("nightly-db", "success", None)]
    assert runs[0].run_id is not None and runs[0].run_id == runs[1].run_id
    assert runs[1].log_excerpt == "tar: /srv: Cannot open: Permission denied\n"
    assert {r.client_name.split("/")[0] for r in runs if r.client_name} == {"curl"}


async def test_the_restic_example_reports_runs(ingest: Ingest, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a" * 5000)
    env = {"RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_PASSWORD": "secret"}
    code, out = await bash("restic init -q", **env)
    assert code == 0, out
    async with serving(ingest.app) as url:
        script = (doc_example("restic backup --json").replace("/tmp/", f"{tmp_path}/")
                  .replace("/srv/data", str(data)))
        env |= {"BACKSTOP": url, "TOKEN": ingest.a.token}
        code, out = await bash(script, **env)
        assert code == 0, out
        code, out = await bash(script, **{**env, "RESTIC_PASSWORD": "wrong"})
        assert code == 0, out
    done, failed = await stored_events(ingest.bus, RunReported)
    assert (done.job, done.status, done.exit_code, done.files_transferred) == (
        "srv-data", "success", 0, 1)
    assert done.bytes_transferred and done.bytes_transferred > 0
    assert done.duration_seconds is not None
    assert done.client_name == "restic" and done.client_version
    assert (failed.status, failed.exit_code, failed.bytes_transferred) == ("failure", 1, None)
    assert failed.log_excerpt and "wrong password" in failed.log_excerpt
