"""The run history projection on both backends: runs merged by run id, log lines, day cells
(missed runs included), usage per day, redelivery, retention; and as a running consumer of a
real nats-server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.portal.history.projection import INGEST_CONSUMER
from services.portal.history.retention import prune
from services.portal.history.service import run_projection
from shared.bus import Bus
from shared.clock import FakeClock
from shared.config import PortalSettings
from shared.db import Database
from shared.runtime import Runtime
from shared.streams import INGEST
from tests.portal.support import (
    T0,
    alert,
    cells,
    ingest,
    logged,
    missed,
    run,
    runs,
    usage,
    usage_days,
)
from tests.support import eventually, make_account, tenant_of


def test_a_start_and_its_end_are_one_run(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "started", T0, run_id="r1", client_name="borgmatic",
                   client_version="1.9"))
    ingest(db, run(tenant, "success", T0 + timedelta(minutes=5), run_id="r1",
                   bytes_transferred=100, files_transferred=3, exit_code=0, message="done"))
    [row] = runs(db)
    assert (row.status, row.started_at, row.finished_at) == (
        "success", T0, T0 + timedelta(minutes=5))
    assert row.duration_seconds == 300
    assert (row.bytes_transferred, row.files_transferred, row.exit_code, row.message) == (
        100, 3, 0, "done")
    assert (row.client_name, row.client_version) == ("borgmatic", "1.9")
    assert (row.reseller_id, row.customer_id, row.account_id) == (
        tenant.reseller, tenant.customer, tenant.account)
    [cell] = cells(db)
    assert (cell.day, cell.successes, cell.failures, cell.bytes_transferred,
            cell.duration_seconds) == (T0.date(), 1, 0, 100, 300)


def test_a_start_arriving_after_its_end_changes_no_status(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "failure", T0 + timedelta(minutes=5), run_id="r1", message="boom"))
    ingest(db, run(tenant, "started", T0, run_id="r1"))
    [row] = runs(db)
    assert (row.status, row.message, row.started_at, row.duration_seconds) == (
        "failure", "boom", T0, 300)
    [cell] = cells(db)
    assert (cell.failures, cell.successes) == (1, 0)


def test_a_later_report_of_a_run_moves_its_count(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "failure", T0, run_id="r1"))
    ingest(db, run(tenant, "success", T0 + timedelta(seconds=1), run_id="r1"))
    [cell] = cells(db)
    assert (cell.failures, cell.successes) == (0, 1)


def test_pings_without_run_id_pair_a_start_with_its_end(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "started", T0, source="ping"),
           run(tenant, "success", T0 + timedelta(minutes=2), source="ping"))
    ingest(db, run(tenant, "success", T0 + timedelta(hours=1), source="ping"))
    first, second = runs(db)
    assert (first.status, first.duration_seconds) == ("success", 120)
    assert second.started_at is None and second.status == "success"
    assert cells(db)[0].successes == 2


def test_a_redelivered_event_changes_nothing(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    events = [run(tenant, "failure", T0, run_id="r1", bytes_transferred=5),
              logged(tenant, "more", T0 + timedelta(seconds=1)),
              usage(tenant, T0, 10)]
    assert ingest(db, *events) == 3
    assert ingest(db, *events) == 0
    [row] = runs(db)
    assert row.log_excerpt == "more"
    [cell] = cells(db)
    assert (cell.failures, cell.bytes_transferred) == (1, 5)
    assert alert(db, missed(tenant, T0)) is True
    assert alert(db, missed(tenant, T0)) is False
    assert cells(db)[0].missed == 1


def test_log_lines_join_their_run_and_keep_the_tail(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "started", T0, run_id="r1", log_excerpt="begin"),
           run(tenant, "started", T0 + timedelta(minutes=1), job="other"))
    ingest(db, logged(tenant, "x" * 400 + "ERROR at the end", T0 + timedelta(minutes=2),
                      run_id="r1"), limit=300)
    row = next(r for r in runs(db) if r.run_id == "r1")
    assert row.log_excerpt is not None and row.log_excerpt.endswith("ERROR at the end")
    assert len(row.log_excerpt.encode()) <= 300 and "cut by Backstop" in row.log_excerpt
    # Without a run id: the job's latest run.
    ingest(db, logged(tenant, "tail line", T0 + timedelta(minutes=3), job="other"))
    other = next(r for r in runs(db) if r.run_id is None)
    assert other.log_excerpt == "tail line"


def test_a_log_line_for_a_job_that_never_ran_is_dropped(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    assert ingest(db, logged(tenant, "nothing", T0)) == 1
    assert runs(db) == []


def test_nul_in_a_log_is_stored_replaced(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "failure", T0, log_excerpt="a\x00b"))
    assert runs(db)[0].log_excerpt == "a\ufffdb"


def test_missed_runs_count_on_the_day_the_alert_fired(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, run(tenant, "success", T0))
    alert(db, missed(tenant, T0 + timedelta(days=1)))
    alert(db, missed(tenant, T0 + timedelta(days=1, hours=1), state="resolved", sequence=2))
    alert(db, missed(tenant, T0 + timedelta(days=2), sequence=3))
    assert [(c.day, c.successes, c.missed) for c in cells(db)] == [
        (T0.date(), 1, 0), ((T0 + timedelta(days=1)).date(), 0, 1),
        ((T0 + timedelta(days=2)).date(), 0, 1)]


def test_usage_keeps_each_days_last_report(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    ingest(db, usage(tenant, T0, 10, 100), usage(tenant, T0 + timedelta(hours=1), 20, 100))
    ingest(db, usage(tenant, T0 + timedelta(minutes=30), 15))  # older than the day's last
    ingest(db, usage(tenant, T0 + timedelta(days=1), 30, 200))
    assert [(u.day, u.bytes_used, u.quota_bytes) for u in usage_days(db)] == [
        (T0.date(), 20, 100), ((T0 + timedelta(days=1)).date(), 30, 200)]


async def test_retention_prunes_in_batches(db: Database) -> None:
    tenant = tenant_of(make_account(db))
    now = T0 + timedelta(days=100)
    ingest(db, *[run(tenant, "success", T0 + timedelta(days=day)) for day in range(5)],
           usage(tenant, T0, 1), usage(tenant, now, 2))
    ingest(db, run(tenant, "failure", now - timedelta(days=1)))
    gone = await prune(db, now, retention_days=90, batch=2)
    assert gone == 5 + 5 + 1
    assert [r.status for r in runs(db)] == ["failure"]
    assert [c.failures for c in cells(db)] == [1]
    assert [u.bytes_used for u in usage_days(db)] == [2]


# --- as a running consumer -------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path) -> PortalSettings:  # type: ignore[no-untyped-def]
    return PortalSettings(data_dir=tmp_path, history_prune_interval_seconds=3600)


async def test_the_projection_consumes_both_streams_and_survives_a_replay(
    bus: Bus, sqlite_db: Database, settings: PortalSettings
) -> None:
    db = sqlite_db
    tenant = tenant_of(make_account(db))
    events = [run(tenant, "started", T0, run_id="r1"),
              run(tenant, "failure", T0 + timedelta(minutes=1), run_id="r1", message="disk full"),
              usage(tenant, T0, 42),
              logged(tenant, "appended once", T0 + timedelta(minutes=2), run_id="r1")]
    for event in events:
        await bus.publish(event)
    await bus.publish(missed(tenant, T0))

    async def projected(runs_expected: int) -> None:
        runtime = Runtime(bus=bus, db=db)
        task = asyncio.create_task(run_projection(settings, runtime, FakeClock(T0)))
        try:
            await eventually(lambda: cells(db) and cells(db)[0].missed == 1
                             and len(runs(db)) == runs_expected)
            # What came after the last run (the replayed events) has been handled too.
            await eventually(lambda: _pending(bus))
        finally:
            runtime.stop.set()
            await asyncio.wait_for(task, 10)

    await projected(1)
    assert runs(db)[0].status == "failure"
    # Every ingest event delivered again from the start: the claims make it a no-op.
    await bus.js.delete_consumer(INGEST.name, INGEST_CONSUMER)
    await bus.publish(run(tenant, "success", T0 + timedelta(hours=1)))
    await projected(2)
    [cell] = cells(db)
    assert (cell.failures, cell.successes, cell.missed) == (1, 1, 1)
    assert [u.bytes_used for u in usage_days(db)] == [42]
    assert runs(db)[0].log_excerpt == "appended once"


async def _pending(bus: Bus) -> bool:
    info = await bus.js.consumer_info(INGEST.name, INGEST_CONSUMER)
    return info.num_pending == 0 and info.num_ack_pending == 0
