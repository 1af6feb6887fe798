"""Plan reports: the executor's report event becomes one e-mail per recipient, over real SMTP,
once even when the event comes twice; an address refused for good does not stop the others."""

from __future__ import annotations

import asyncio

from aiosmtpd.controller import Controller

from services.notifier.service import run
from shared.bus import Bus
from shared.config import NotifierSettings
from shared.db import Database
from shared.events import PlanReported, ReportedTask
from shared.runtime import Runtime
from tests.notifier.support import KEY
from tests.support import SmtpSink, eventually, make_account, tenant_of


async def test_a_plan_report_is_mailed_to_each_recipient_once(
    bus: Bus, nats_url: str, sqlite_db: Database,
    smtp_server: tuple[Controller, SmtpSink],
) -> None:
    controller, sink = smtp_server
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="fileserver")
    settings = NotifierSettings(nats_url=nats_url, database_url=sqlite_db.url,
                                smtp_host="127.0.0.1", smtp_port=controller.port,
                                secret_keys=KEY, mail_from="backups@msp.example")
    runtime = Runtime(bus=bus, db=sqlite_db)
    task = asyncio.create_task(run(settings, runtime))
    report = PlanReported(
        tenant=tenant_of(issued), plan="nightly-db", execution_id="e1", status="failed",
        recipients=["dba@acme.example", "boss@acme.example"], error=None,
        succeeded=1, failed=1, skipped=0,
        tasks=[ReportedTask(target="db-1", item="sales", action="postgres.dump",
                            status="succeeded", files=1, bytes=2048, duration_seconds=1.5),
               ReportedTask(target="db-2", item="hr", action="postgres.dump", status="failed",
                            error="pg_dump: connection refused")])
    try:
        await bus.publish(report)
        await bus.publish(report.model_copy(update={"event_id": report.event_id}))  # a retry
        await eventually(lambda: len(sink.messages) >= 2, timeout=15)
        await asyncio.sleep(0.5)
        assert sorted(m["To"] for m in sink.messages) == ["boss@acme.example",
                                                          "dba@acme.example"]
        mail = sink.messages[0]
        assert mail["Subject"].startswith("[FAILED] Backup plan nightly-db: failed")
        assert mail["From"] == "Backstop <backups@msp.example>"
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "fileserver (customer Acme, reseller MSP)" in text
        assert "failed  postgres.dump on db-2 (hr)" in text
        assert "pg_dump: connection refused" in text
        # The same report under another id (the executor publishing it again after a crash
        # keeps its id, so only a new report mails again).
        await bus.publish(report.model_copy(update={"event_id": "other", "recipients": [
            "dba@acme.example"]}))
        await eventually(lambda: len(sink.messages) >= 3, timeout=15)
    finally:
        runtime.stop.set()
        await asyncio.wait_for(task, 15)
