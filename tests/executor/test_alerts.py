"""A failing plan alerts through the system's one alert path: every service running for real
(``backstop up``'s serve() on the test's NATS and database), the plan's run events on the
ingest stream, the evaluator's failed-run alert, the notifier's e-mail to the account's
contacts, and the plan report to the plan's recipients."""

from __future__ import annotations

import asyncio
import email
from email.message import Message
from pathlib import Path

import httpx

from services.cli.runner import Service, _service, serve
from services.executor.triggers import manual_trigger
from shared.bus import Bus
from shared.config import EmbeddedSettings
from shared.db import Database
from shared.natsd import free_port
from tests.executor.replicas import apply
from tests.support import eventually, make_account, tenant_of


def mails(outbox: Path) -> list[Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]


async def test_a_failing_plan_alerts_through_the_evaluator_and_the_notifier(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers",
                          contacts=["ops@acme.example"])
    apply(sqlite_db, f"""
kind: Target
metadata: {{name: db-1}}
---
kind: Plan
metadata: {{name: nightly}}
spec:
  account: MSP/Acme/servers
  destination: {{path: '{tmp_path / "backups"}'}}
  report: {{recipients: [dba@acme.example]}}
  activities:
    - action: command.run
      targets: db-1
      options:
        script: 'echo "dump failed: disk full" >&2; exit 3'
""")
    settings = EmbeddedSettings(data_dir=tmp_path, nats_url=nats_url, database_url=sqlite_db.url,
                                ingest_port=free_port(), ops_port=free_port(),
                                executor_lease_seconds=3)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, [_service(s)[1] for s in Service],
                                     embedded=True, stop=stop))

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{settings.ops_port}/readyz")
                return answer.status_code == 200 and answer.json()["checks"]["executor"]
        except httpx.TransportError:
            return False

    try:
        await eventually(ready, timeout=20)
        await bus.publish(manual_trigger("nightly", tenant_of(issued)))
        outbox = settings.outbox()
        found = await eventually(lambda: (m := mails(outbox)) and len(m) >= 2 and m,
                                 timeout=30)
        found = await eventually(lambda: (m := mails(outbox)) and len(m) >= 3 and m,
                                 timeout=30)
        alerts = sorted(" ".join(m["Subject"].split()) for m in found
                        if m["To"] == "ops@acme.example")
        # The plan's job says which task failed and why; the task's job names the machine.
        assert alerts[0].startswith("[PROBLEM] Backup job nightly failed: command.run on db-1: "
                                    "the script exited with 3: dump failed: disk full")
        assert alerts[1].startswith("[PROBLEM] Backup job nightly.db-1.command-run failed")
        report = next(m for m in found if m["To"] == "dba@acme.example")
        assert report["Subject"].startswith("[FAILED] Backup plan nightly: failed")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
