"""Every alert transition leaves one INFO line with its ids, once committed; no client text.
The evaluator runs for real (bus, engine, store on SQLite)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.evaluator.alerts import fingerprint
from shared.bus import Bus
from shared.db import Database
from shared.logs import JsonFormatter
from tests.evaluator.support import StartEvaluator, run, schedule
from tests.support import eventually, make_account, tenant_of

HOSTILE = "disk full\nFORGED level=error https://u:pw@evil.example/t0k"


def alert_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "alert"]


async def test_fired_and_resolved_leave_one_line_each(
    sqlite_db: Database, bus: Bus, start_evaluator: StartEvaluator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    tenant = tenant_of(make_account(sqlite_db))
    await start_evaluator(sqlite_db, replica_id="one")
    now = datetime.now(UTC)
    await bus.publish(run("failure", now, tenant=tenant, message=HOSTILE))
    await eventually(lambda: len(alert_lines(caplog)) == 1)
    await bus.publish(run("failure", now + timedelta(seconds=1), tenant=tenant))  # still firing
    await bus.publish(run("success", now + timedelta(seconds=2), tenant=tenant))
    await eventually(lambda: len(alert_lines(caplog)) == 2)
    await asyncio.sleep(0.5)  # a second line for either would show up by now

    fired, resolved = alert_lines(caplog)
    fp = fingerprint("failed_run", tenant.account, "nightly")
    for record, transition, sequence in ((fired, "firing", 1), (resolved, "resolved", 2)):
        assert record.levelno == logging.INFO and record.name == "services.evaluator.alerts"
        assert record.getMessage() == f"alert {transition}"
        assert {k: getattr(record, k) for k in (
            "transition", "kind", "severity", "fingerprint", "sequence", "event_id",
            "reseller_id", "customer_id", "account_id", "job")} == {
            "transition": transition, "kind": "failed_run", "severity": "error",
            "fingerprint": fp, "sequence": sequence, "event_id": f"{fp}-{sequence}",
            "reseller_id": tenant.reseller, "customer_id": tenant.customer,
            "account_id": tenant.account, "job": "nightly"}
        line = JsonFormatter().format(record)
        assert "disk full" not in line and "FORGED" not in line and "\n" not in line


async def test_a_deadline_transition_leaves_one_line(
    sqlite_db: Database, bus: Bus, start_evaluator: StartEvaluator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    tenant = tenant_of(make_account(sqlite_db))
    await start_evaluator(sqlite_db, replica_id="one")
    await bus.publish(schedule(datetime.now(UTC), tenant=tenant, interval_seconds=1,
                               grace_seconds=1))
    await eventually(lambda: alert_lines(caplog))
    await asyncio.sleep(0.5)
    (line,) = alert_lines(caplog)
    assert line.getMessage() == "alert firing"
    assert (line.kind, line.account_id, line.job) == (  # type: ignore[attr-defined]
        "missed_run", tenant.account, "nightly")
