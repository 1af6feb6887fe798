"""``backstop executor pause|resume|status`` and ``backstop plans run`` through the real command
line, on the test's nats-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.bus import Bus
from shared.events import PlanTriggered
from shared.streams import EXECUTOR

runner = CliRunner()


@pytest.fixture
def on_nats(bus: Bus, nats_url: str, sqlite_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTOP_NATS_URL", nats_url)
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BACKSTOP_DATA_DIR", str(tmp_path))


def test_pause_is_shown_by_status_until_resumed(on_nats: None) -> None:
    paused = runner.invoke(app, ["executor", "pause", "--reason", "storage maintenance"])
    assert paused.exit_code == 0, paused.output
    assert "executor paused" in paused.output
    status = runner.invoke(app, ["executor", "status"])
    assert status.exit_code == 0, status.output
    assert status.output.startswith("paused since ")
    assert ": storage maintenance" in status.output.splitlines()[0]
    assert "REPLICA  LABELS  RUNNING  SEEN_AT" in status.output
    assert runner.invoke(app, ["executor", "resume"]).exit_code == 0
    as_json = json.loads(runner.invoke(app, ["executor", "status", "--json"]).output)
    assert as_json["paused"] is False
    assert as_json["replicas"] == [] and as_json["waiting_triggers"] == 0


def test_plans_run_without_wait_queues_a_trigger(
    on_nats: None, nats_url: str, tmp_path: Path,
) -> None:
    accounts = runner.invoke(app, ["accounts", "create", "--reseller", "MSP", "--customer",
                                   "Acme", "--name", "servers", "--email", "ops@acme.example"])
    assert accounts.exit_code == 0, accounts.output
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""
kind: Target
metadata: {{name: web-1}}
---
kind: Plan
metadata: {{name: nightly}}
spec:
  account: MSP/Acme/servers
  replicas: {{site: berlin}}
  destination: {{path: '{tmp_path}'}}
  activities:
    - action: command.run
      targets: '*'
      options: {{script: 'true'}}
""")
    assert runner.invoke(app, ["plans", "apply", "-f", str(plan)]).exit_code == 0
    result = runner.invoke(app, ["plans", "run", "nightly", "--json"])
    assert result.exit_code == 0, result.output
    queued = json.loads(result.output)
    assert queued["status"] == "queued"
    subject, data = asyncio.run(stored_trigger(nats_url))
    assert b'"reason":"manual"' in data
    assert queued["execution_id"].encode() in data
    assert ".any." not in subject  # pinned to the replicas labelled site=berlin
    missing = runner.invoke(app, ["plans", "run", "nope"])
    assert missing.exit_code == 2
    assert "no plan 'nope'" in missing.output


async def stored_trigger(nats_url: str) -> tuple[str, bytes]:
    bus = Bus(nats_url)
    await bus.connect(ensure_topology=False)
    try:
        sub = await bus.js.pull_subscribe(f"{PlanTriggered.subject_filter('')}>",
                                          stream=EXECUTOR.name)
        [msg] = await sub.fetch(1, timeout=5)
        # A work queue admits no second consumer on these subjects: leave none behind.
        await bus.js.delete_consumer(EXECUTOR.name, (await sub.consumer_info()).name)
        return msg.subject, msg.data
    finally:
        await bus.close()


def test_without_nats_the_cli_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKSTOP_NATS_URL", raising=False)
    monkeypatch.setenv("BACKSTOP_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["executor", "status"])
    assert result.exit_code == 2
    assert "start `backstop up`" in result.output
