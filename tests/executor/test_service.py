"""The executor as it runs: a trigger over NATS becomes an execution in the history and run
events on the ingest stream; the pause switch stops plans; two replicas never run tasks on one
target at once; a trigger delivered twice runs once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from services.executor import catalog
from services.executor.switch import Switch
from services.executor.triggers import manual_trigger, tick_execution_id
from shared.bus import Bus
from shared.db import Database
from shared.events import PlanTriggered, RunReported, ScheduleSet
from shared.scopes import Scope
from tests.executor.replicas import apply, ended, published, replica, tasks
from tests.executor.shifted_clock import ShiftedClock
from tests.support import eventually, make_account, tenant_of


def plan_text(name: str, destination: Path, script: str, *, targets: tuple[str, ...] = ("web-1",),
              schedule: str = "") -> str:
    inventory = "".join(f"kind: Target\nmetadata: {{name: {t}}}\n---\n" for t in targets)
    return inventory + f"""
kind: Plan
metadata: {{name: {name}}}
spec:
  account: MSP/Acme/servers
  {schedule}
  destination: {{path: '{destination}'}}
  activities:
    - action: command.run
      targets: '*'
      options:
        script: {script!r}
"""


async def test_a_manual_run_is_recorded_and_reported(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    apply(sqlite_db, plan_text("nightly", tmp_path / "backups", "echo hello > out.txt",
                               targets=("web-1", "web-2"),
                               schedule="schedule: {cron: '0 2 * * *', timezone: Europe/Berlin}"))
    async with replica(nats_url, sqlite_db):
        trigger = manual_trigger("nightly", tenant_of(issued))
        await bus.publish(trigger)
        row = await ended(sqlite_db, trigger.execution_id)
        assert row.status == "succeeded", row.error
        assert {t.target for t in tasks(sqlite_db, trigger.execution_id)} == {"web-1", "web-2"}
        assert len(found(tmp_path / "backups", "out.txt")) == 2

        def runs() -> object:
            return published(bus, "backstop.ingest.>")
        events = await eventually(
            lambda: _when(runs(), lambda es: sum(isinstance(e, RunReported) for e in es) >= 4))
    reported = [e for e in events if isinstance(e, RunReported)]
    assert all(e.tenant == tenant_of(issued) for e in events)
    plan_runs = [e for e in reported if e.job == "nightly"]
    assert [e.status for e in plan_runs] == ["started", "success"]
    assert {e.run_id for e in plan_runs} == {trigger.execution_id}
    assert sorted(e.job for e in reported if e.job != "nightly") == [
        "nightly.web-1.command-run", "nightly.web-2.command-run"]
    schedules = [e for e in events if isinstance(e, ScheduleSet)]
    assert [(s.job, s.cron, s.timezone) for s in schedules] == [
        ("nightly", "0 2 * * *", "Europe/Berlin")]


async def _when(events: object, check: object) -> object:
    found = await events  # type: ignore[misc]
    return found if check(found) else None  # type: ignore[operator]


async def test_no_plan_starts_while_paused(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    apply(sqlite_db, plan_text("nightly", tmp_path / "b", "touch ran"))
    async with replica(nats_url, sqlite_db):
        switch = Switch(bus)
        await switch.set(True, by="test", reason="maintenance")
        paused = manual_trigger("nightly", tenant_of(issued))
        await bus.publish(paused)
        row = await ended(sqlite_db, paused.execution_id)
        assert row.status == "stopped"
        assert "paused" in (row.error or "")
        assert found(tmp_path, "ran") == []
        await switch.set(False, by="test")
        resumed = manual_trigger("nightly", tenant_of(issued))
        await bus.publish(resumed)
        assert (await ended(sqlite_db, resumed.execution_id)).status == "succeeded"
    state = await Switch(bus).state()
    assert state.paused is False and state.by == "test"


async def test_two_replicas_never_run_tasks_on_one_target_at_once(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    log = tmp_path / "log"
    # Each task notes its start and end on the shared target; a second one starting in between
    # would show as two starts in a row.
    script = f"echo start >> {log}; sleep 0.3; echo end >> {log}; touch out"
    text = plan_text("first", tmp_path / "b1", script, targets=("db-1",)) + "---\n" + \
        plan_text("second", tmp_path / "b2", script, targets=("db-1",)).split("---\n", 1)[1]
    apply(sqlite_db, text)
    async with replica(nats_url, sqlite_db) as one, replica(nats_url, sqlite_db) as two:
        triggers = [manual_trigger(name, tenant_of(issued)) for name in
                    ("first", "second", "first", "second")]
        for trigger in triggers:
            await bus.publish(trigger)
        rows = [await ended(sqlite_db, t.execution_id) for t in triggers]
        runners = {row.runner for row in rows}
    assert [row.status for row in rows] == ["succeeded"] * 4
    assert runners == {one.replica_id, two.replica_id}  # both replicas took work
    lines = log.read_text().split()
    assert lines == ["start", "end"] * 4


def found(root: Path, name: str) -> list[Path]:
    return list(root.rglob(name))


async def test_a_trigger_delivered_twice_runs_once(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    issued = make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    apply(sqlite_db, plan_text("nightly", tmp_path / "b", "echo x >> $BACKSTOP_DESTINATION/runs"))
    trigger = manual_trigger("nightly", tenant_of(issued))
    async with replica(nats_url, sqlite_db):
        await bus.publish(trigger)
        await ended(sqlite_db, trigger.execution_id)
        # The same trigger under another message id: what a redelivery after a crash between
        # queueing and the ack looks like.
        again = PlanTriggered.model_validate({**trigger.model_dump(), "event_id": "again"})
        await bus.publish(again)
        await asyncio.sleep(1.5)
    assert (tmp_path / "b" / "runs").read_text().split() == ["x"]


async def test_a_disabled_plan_is_no_longer_expected_to_run(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    apply(sqlite_db, plan_text("nightly", tmp_path / "b", "true",
                               schedule="schedule: {cron: '0 2 * * *'}"))

    async def schedules() -> list[tuple[str | None, str]]:
        return [(e.cron, e.job) for e in await published(bus, "backstop.ingest.>")
                if isinstance(e, ScheduleSet)]

    async with replica(nats_url, sqlite_db):
        await eventually(lambda: _when(schedules(), lambda s: len(s) == 1))
        with sqlite_db.session() as session:
            catalog.set_enabled(session, Scope.everything(), "nightly", False)
        found = await eventually(lambda: _when(schedules(), lambda s: len(s) == 2))
    assert found == [("0 2 * * *", "nightly"), (None, "nightly")]


async def test_a_schedule_tick_starts_the_plan_on_one_of_two_replicas(
    bus: Bus, nats_url: str, sqlite_db: Database, tmp_path: Path,
) -> None:
    make_account(sqlite_db, reseller="MSP", customer="Acme", name="servers")
    apply(sqlite_db, plan_text("minutely", tmp_path / "b",
                               "echo x >> $BACKSTOP_DESTINATION/runs; touch out",
                               schedule="schedule: {cron: '* * * * *', timezone: Europe/Berlin}"))
    clock = ShiftedClock.before_next_minute(2.0)  # both replicas' schedulers: a tick in 2 s
    async with replica(nats_url, sqlite_db, clock), replica(nats_url, sqlite_db, clock):
        due = clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
        execution_id = tick_execution_id("minutely", due)
        row = await ended(sqlite_db, execution_id, timeout=20)
        await asyncio.sleep(1.0)
    assert row.status == "succeeded"
    assert (tmp_path / "b" / "runs").read_text().split() == ["x"]  # two schedulers, one run
    # Queued (by the system's clock) within a second of the tick (on the shifted one).
    assert abs((row.queued_at + clock.offset - due).total_seconds()) < 1.0
