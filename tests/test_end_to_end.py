"""HTTP → JetStream → evaluator → notifier → e-mail, with every service running for real."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.cli.runner import Service, _service, serve
from shared.bus import Bus
from shared.config import EmbeddedSettings
from shared.db import Database
from shared.natsd import free_port
from shared.tenancy import IssuedAccount
from tests.support import eventually, make_account


@dataclass
class System:
    base_url: str
    outbox: Path
    account: IssuedAccount

    def outbox_messages(self) -> list[email.message.Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.outbox.glob("*.eml"))]


@pytest.fixture
async def system(
    bus: Bus, nats_url: str, db: Database, tmp_path: Path
) -> AsyncIterator[System]:
    """``backstop up``'s serve() in this process, on the test's NATS server and database."""
    account = make_account(db, reseller="MSP", customer="Acme", name="fileserver",
                           contacts=["ops@acme.example", "boss@acme.example"])
    settings = EmbeddedSettings(
        data_dir=tmp_path, nats_url=nats_url, database_url=db.url, ingest_port=free_port(),
        ops_port=free_port(), portal_port=free_port(),
    )
    stop = asyncio.Event()
    mains = [_service(s)[1] for s in Service]
    task = asyncio.create_task(serve(settings, mains, embedded=True, stop=stop))
    base_url = f"http://127.0.0.1:{settings.ingest_port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                ops = f"http://127.0.0.1:{settings.ops_port}"
                return (await client.get(f"{ops}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready)
    yield System(base_url=base_url, outbox=settings.outbox(), account=account)
    stop.set()
    await asyncio.wait_for(task, timeout=20)


async def post_run(system: System, **body: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        return await client.post(
            "/v1/runs", json=body, headers={"Authorization": f"Bearer {system.account.token}"}
        )


async def test_failed_run_becomes_an_email_and_success_resolves_it(system: System) -> None:
    answer = await post_run(system, job="nightly", status="failure", run_id="r1",
                            message="disk full", exit_code=2)
    assert answer.status_code == 202, answer.text

    # Each contact's e-mail is its own delivery: wait for both, not just the first to land.
    firing = await eventually(
        lambda: (m := system.outbox_messages()) and len(m) >= 2 and m, timeout=15
    )
    assert {m["To"] for m in firing} == {"ops@acme.example", "boss@acme.example"}
    subject = firing[0]["Subject"]
    assert subject.startswith("[PROBLEM]") and "nightly" in subject and "disk full" in subject
    text = firing[0].get_payload()[0].get_payload(decode=True).decode()
    assert "Acme" in text and "fileserver" in text

    assert (await post_run(system, job="nightly", status="success", run_id="r2")).status_code == 202
    messages = await eventually(
        lambda: (m := system.outbox_messages()) and len(m) == 4 and m, timeout=15
    )
    resolved = [m for m in messages if m["Subject"].startswith("[RESOLVED]")]
    assert len(resolved) == 2


async def test_retried_upload_alerts_once(system: System) -> None:
    for _ in range(3):
        answer = await post_run(system, job="db", status="failure", run_id="same-run")
        assert answer.status_code == 202
    await eventually(lambda: len(system.outbox_messages()) == 2, timeout=15)
    await asyncio.sleep(1.0)  # a duplicate would arrive within this time
    assert len(system.outbox_messages()) == 2


async def test_a_line_feed_in_the_run_message_still_mails_a_clean_subject(system: System) -> None:
    answer = await post_run(system, job="nightly", status="failure",
                            message="disk\nfull\r\n\x1b[31mERROR\u2028see log")
    assert answer.status_code == 202, answer.text
    firing = await eventually(
        lambda: (m := system.outbox_messages()) and len(m) >= 2 and m, timeout=15
    )
    subject = re.sub(r"\r?\n[ \t]", " ", str(firing[0]["Subject"]))  # undo the folding
    assert subject.startswith("[PROBLEM] Backup job nightly failed: disk full [31mERROR see log")
    assert subject.isprintable()
    text = firing[0].get_payload()[0].get_payload(decode=True).decode()
    assert "disk\nfull" in text  # the body keeps the client's lines
