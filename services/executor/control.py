"""The operator's hold on running executors, over NATS: run a plan now (and wait for its
outcome), pause and resume them all, and see their state. The command line's facade for what
travels on the bus (what is in the database is :mod:`admin`'s)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from sqlmodel import Session

from services.executor import catalog
from services.executor.recovery import DurableIntents, Replicas
from services.executor.switch import Switch, SwitchState
from services.executor.tables import PlanRow
from services.executor.triggers import manual_trigger, pin_label
from shared.bus import Bus
from shared.events import PlanTriggered, RunReported, Tenant, decode
from shared.streams import EXECUTOR

__all__ = ["NoOutcome", "Status", "SwitchState", "UnknownPlan", "pause", "prepare", "resume",
           "run", "status"]


class UnknownPlan(LookupError):
    """No plan of that name was applied."""


class NoOutcome(TimeoutError):
    """The plan did not end within the wait (no executor running, or a long plan)."""


def prepare(session: Session, name: str) -> PlanTriggered:
    """The trigger of a manual run of plan ``name`` (disabled plans run too when asked)."""
    row = session.get(PlanRow, name)
    if row is None:
        raise UnknownPlan(f"no plan {name!r} (apply it with backstop plans apply -f FILE)")
    plan = catalog.plan_of(row)
    tenant = Tenant(reseller=row.reseller_id, customer=row.customer_id, account=row.account_id)
    return manual_trigger(plan.name, tenant, pin_label(plan.spec.replicas))


async def run(bus: Bus, trigger: PlanTriggered, *, wait: float | None = None) -> RunReported | None:
    """Publish ``trigger``; with ``wait``, return the plan's final run event (the outcome the
    evaluator sees too), or raise :class:`NoOutcome` after ``wait`` seconds."""
    if wait is None:
        await bus.publish(trigger)
        return None
    # Listening before publishing: the outcome cannot come before we look.
    subject = RunReported.subject_for(trigger.tenant) + ".*"  # + the stream's partition token
    sub = await bus.js.subscribe(subject, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.NEW)
    try:
        await bus.publish(trigger)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise NoOutcome(f"plan {trigger.plan} did not end within {wait:g} s")
            try:
                msg = await sub.next_msg(timeout=min(left, 5.0))
            except TimeoutError:
                continue
            event = decode(msg.data)
            if (isinstance(event, RunReported) and event.run_id == trigger.execution_id
                    and event.status != "started"):
                return event
    finally:
        await sub.unsubscribe()


async def pause(bus: Bus, *, by: str, reason: str = "") -> SwitchState:
    return await Switch(bus).set(True, by=by, reason=reason)


async def resume(bus: Bus, *, by: str) -> SwitchState:
    return await Switch(bus).set(False, by=by)


@dataclass
class Status:
    switch: SwitchState
    replicas: list[dict[str, Any]] = field(default_factory=list)
    waiting: int = 0  # triggers stored, not yet taken
    open_intents: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "paused": self.switch.paused,
            "changed_at": self.switch.changed_at.isoformat() if self.switch.changed_at else None,
            "by": self.switch.by, "reason": self.switch.reason,
            "replicas": self.replicas, "waiting_triggers": self.waiting,
            "unquiesce_pending": self.open_intents,
        }


async def status(bus: Bus) -> Status:
    replicas = await Replicas(bus, "status").alive()
    intents = await DurableIntents(bus, "status").open()
    try:
        info = await bus.js.stream_info(EXECUTOR.name)
        waiting = int(info.state.messages)
    except NotFoundError:
        waiting = 0
    rows = [{"replica": r["replica"], "labels": ",".join(f"{k}={v}" for k, v in
                                                        sorted(r.get("labels", {}).items())),
             "running": len(r.get("running", [])), "seen_at": r.get("seen_at")}
            for r in sorted(replicas.values(), key=lambda r: str(r["replica"]))]
    pending = [{"replica": replica, "target": i.target, "item": i.item, "plan": i.plan,
                "execution": i.execution_id} for replica, i in intents]
    return Status(await Switch(bus).state(), rows, waiting, pending)

