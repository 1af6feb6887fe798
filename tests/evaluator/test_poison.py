"""A message the evaluator can never process holds up nobody: it goes to the dead letters at
once, and the other accounts of its partition are evaluated as if it had not been there."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from services.evaluator import failures
from services.evaluator.facts import Transition
from services.evaluator.tables import Alert
from shared.bus import Bus
from shared.db import Database
from shared.events import RunReported, Tenant
from shared.streams import DEAD_LETTERS, partition_of
from tests.evaluator.support import StartEvaluator, run, schedule
from tests.support import eventually, make_account, tenant_of

# The figure: a victim's alert took 232.9 s behind one poison message instead of 0.5 s.
ALERT_WITHIN = 1.0


def _same_partition(db: Database) -> tuple[Tenant, Tenant]:
    """A victim account and a poisoning one that the evaluator handles in the same partition."""
    victim = tenant_of(make_account(db))
    while True:
        poisoner = tenant_of(make_account(db))
        if partition_of(poisoner.account) == partition_of(victim.account):
            return victim, poisoner


async def _publish_raw_run(bus: Bus, tenant: Tenant, **fields: object) -> None:
    """Straight onto the bus, as a client of NATS could: no ingest validation on the way."""
    body = {"type": "run", "schema_version": 1, "event_id": uuid.uuid4().hex,
            "occurred_at": datetime.now(UTC).isoformat(), "tenant": tenant.model_dump(),
            "job": "nightly", "status": "failure", **fields}
    await bus.js.publish(RunReported.subject_for(tenant), json.dumps(body).encode())


async def _year_one_east(bus: Bus, poisoner: Tenant) -> None:
    await _publish_raw_run(bus, poisoner, finished_at="0001-01-01T00:00:00+14:00")


async def _year_one_west_schedule(bus: Bus, poisoner: Tenant) -> None:
    await bus.publish(schedule(datetime.now(UTC), tenant=poisoner, cron="0 3 * * *",
                               timezone="America/New_York"))
    await _publish_raw_run(bus, poisoner, finished_at="0001-01-01T00:00:00Z")


async def _rule_cannot_compute(bus: Bus, poisoner: Tenant) -> None:
    # Passes every check on the way in; the rule then fails on it (see the fixture below).
    await bus.publish(run("failure", datetime.now(UTC), tenant=poisoner, job="poison"))


@pytest.fixture
def rule_fails_on_poison(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that raises on one job: a stand-in for any case no validation foresaw."""
    on_finished = failures.on_finished

    def failing(job, run, policies) -> Transition | None:  # type: ignore[no-untyped-def]
        if job.name == "poison":
            raise OverflowError("date value out of range")
        return on_finished(job, run, policies)

    monkeypatch.setattr(failures, "on_finished", failing)


POISONS: dict[str, Callable[[Bus, Tenant], object]] = {
    "year-1 +14:00": _year_one_east,
    "year-1 Z, cron west of UTC": _year_one_west_schedule,
    "a rule raising": _rule_cannot_compute,
}


def _victim_alerted(db: Database, victim: Tenant) -> bool:
    with db.session() as session:
        return session.exec(select(Alert).where(
            Alert.account_id == victim.account, Alert.state == "firing")).first() is not None


@pytest.mark.parametrize("poison", list(POISONS))
async def test_a_poison_message_does_not_delay_another_accounts_alert(
    db: Database, bus: Bus, start_evaluator: StartEvaluator, rule_fails_on_poison: None,
    poison: str,
) -> None:
    victim, poisoner = _same_partition(db)
    evaluator = await start_evaluator(db, replica_id="one")
    await eventually(evaluator.ready, timeout=20)
    worker = evaluator.workers[partition_of(victim.account)][1]
    for _ in range(2):  # each one used to add about four minutes
        await POISONS[poison](bus, poisoner)  # type: ignore[misc]
    loop = asyncio.get_running_loop()
    published = loop.time()
    await bus.publish(run("failure", datetime.now(UTC), tenant=victim))
    await eventually(lambda: _victim_alerted(db, victim), timeout=5, interval=0.01)
    took = loop.time() - published
    assert took < ALERT_WITHIN, f"the victim's alert took {took:.2f} s"
    info = await bus.js.stream_info(DEAD_LETTERS.name)
    assert info.state.messages == 2
    # Handled, not survived: the partition's worker did not crash and restart on the way.
    assert evaluator.workers[partition_of(victim.account)][1] is worker and not worker.done()
