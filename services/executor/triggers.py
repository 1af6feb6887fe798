"""Plan runs as messages: schedule ticks and manual runs travel over JetStream to the replicas.

- **Ticks.** Every replica runs a :class:`Scheduler`: it computes each enabled plan's next fire
  time from its cron + time zone (:mod:`shared.schedules`, the evaluator's own code) and, when
  it comes, publishes a :class:`~shared.events.PlanTriggered`. Its event id, which is the
  ``Nats-Msg-Id``, is derived from (plan, fire time), so the same tick published by every
  replica is stored once (JetStream's duplicate window): only one replica's tick becomes a run,
  no replica has to be elected, and the schedule goes on as long as one replica lives.
- **Manual runs** (``backstop plans run``) are the same message with a random execution id.
- **Taking work.** Triggers are stored in the ``BACKSTOP_EXECUTOR`` work-queue stream under a
  token for the replica labels the plan needs (``any`` when none; else a digest of the labels,
  :func:`pin_label`). Replicas share one durable consumer per token and bind to ``any`` and to
  the token of every subset of their own labels (``BACKSTOP_EXECUTOR_LABELS``), so a trigger is
  taken by exactly one replica that may run it, and never by one that may not.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Histogram

from shared.bus import Bus, BusUnavailable
from shared.clock import Clock, SystemClock
from shared.consumers import Gate, Handler, consume
from shared.events import ANY_REPLICA, PlanTriggered, Tenant
from shared.schedules import Schedule
from shared.streams import EXECUTOR, ConsumerSpec
from shared.wakeup import pause

log = logging.getLogger(__name__)

_TICK_NAMESPACE = uuid.UUID("5d0f3c1e-8a5b-4c7e-9a51-3c9b0e2f7d41")
# A tick the scheduler could not publish (NATS away) is retried this long, then left to the
# evaluator's missed-run alert.
TICK_GIVE_UP = timedelta(minutes=5)

TICKS = Counter("backstop_executor_ticks_total", "Schedule ticks published by this replica.",
                ["outcome"])
TICK_LAG = Histogram(
    "backstop_executor_tick_publish_seconds", "From a tick's time to its trigger being stored.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30),
)


@dataclass(frozen=True)
class ScheduledPlan:
    """What the scheduler needs of an enabled plan."""

    name: str
    schedule: Schedule
    tenant: Tenant
    label: str = ANY_REPLICA


# The enabled plans with a schedule, read again every refresh.
PlanSource = Callable[[], Awaitable[list[ScheduledPlan]]]


# A replica binds to one consumer per subset of its labels: a few labels at most.
MAX_REPLICA_LABELS = 4


def pin_label(required: Mapping[str, str]) -> str:
    """The subject token of triggers for plans needing replicas with all of ``required``
    (a plan's ``replicas``); ``any`` when it needs none."""
    if not required:
        return ANY_REPLICA
    text = ",".join(f"{k}={v}" for k, v in sorted(required.items()))
    return "on-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def parse_labels(text: str) -> dict[str, str]:
    """``site=berlin,disk=ssd`` (``BACKSTOP_EXECUTOR_LABELS``) as a mapping."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"replica label {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    if len(labels) > MAX_REPLICA_LABELS:
        raise ValueError(f"a replica has at most {MAX_REPLICA_LABELS} labels")
    return labels


def replica_tokens(labels: Mapping[str, str]) -> list[str]:
    """Every pin a replica with ``labels`` satisfies: ``any`` and each subset of its labels."""
    items = sorted(labels.items())
    tokens = [ANY_REPLICA]
    for size in range(1, len(items) + 1):
        tokens += [pin_label(dict(subset)) for subset in itertools.combinations(items, size)]
    return tokens


def tick_execution_id(plan: str, due_at: datetime) -> str:
    """The same for every replica: the tick's run is stored once."""
    return uuid.uuid5(_TICK_NAMESPACE, f"{plan}@{due_at.timestamp():.3f}").hex


def scheduled_trigger(plan: ScheduledPlan, due_at: datetime) -> PlanTriggered:
    execution_id = tick_execution_id(plan.name, due_at)
    return PlanTriggered(event_id=f"tick-{execution_id}", tenant=plan.tenant, plan=plan.name,
                         execution_id=execution_id, reason="schedule", due_at=due_at,
                         label=plan.label)


def manual_trigger(plan: str, tenant: Tenant, label: str = ANY_REPLICA) -> PlanTriggered:
    execution_id = secrets.token_hex(16)
    return PlanTriggered(event_id=f"run-{execution_id}", tenant=tenant, plan=plan,
                         execution_id=execution_id, reason="manual", label=label)


def trigger_spec(label: str) -> ConsumerSpec:
    """The durable consumer every replica with ``label`` shares. One trigger at a time: a
    replica takes a trigger only when it has room to start it (the gate), so none waits
    unacked in a busy replica while another is idle."""
    return ConsumerSpec(
        stream=EXECUTOR.name, durable=f"executor-{label}",
        filter_subjects=[PlanTriggered.label_filter(label)], batch=1, max_ack_pending=1000,
        ack_wait_seconds=30,
    )


async def take_triggers(bus: Bus, labels: Mapping[str, str], handle: Handler,
                        stop: asyncio.Event, gate: Gate | None = None) -> None:
    """Consume the triggers any replica may run and those pinned to what ``labels`` satisfy."""
    specs = [trigger_spec(token) for token in replica_tokens(labels)]
    await asyncio.gather(*(consume(bus, spec, handle, stop, gate=gate) for spec in specs))


class Scheduler:
    """Publishes each enabled plan's ticks when they come.

    Plans are read again every ``refresh`` seconds; a plan whose schedule did not change keeps
    its next tick. A tick missed while no replica ran is
    not made up: the evaluator's missed-run alert reports it.
    """

    def __init__(self, bus: Bus, plans: PlanSource, *, refresh: float = 10.0,
                 clock: Clock | None = None) -> None:
        self.bus = bus
        self.plans = plans
        self.refresh = refresh
        self.clock = clock or SystemClock()
        self._next: dict[str, tuple[ScheduledPlan, datetime]] = {}
        self._heap: list[tuple[datetime, str]] = []

    @property
    def next_ticks(self) -> dict[str, datetime]:
        return {name: due for name, (_, due) in self._next.items()}

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        read_at = 0.0
        while not stop.is_set():
            if loop.time() >= read_at:
                try:
                    self.load(await self.plans())
                except Exception as exc:  # database away: keep the plans we know
                    log.warning("scheduler: reading plans failed: %r", exc)
                read_at = loop.time() + self.refresh
            await self.publish_due()
            wait = read_at - loop.time()
            if self._heap:
                wait = min(wait, (self._heap[0][0] - self.clock.now()).total_seconds())
            if wait > 0:
                await pause(stop, wait)

    def load(self, plans: list[ScheduledPlan]) -> None:
        now = self.clock.now()
        fresh: dict[str, tuple[ScheduledPlan, datetime]] = {}
        for plan in plans:
            known = self._next.get(plan.name)
            if known is not None and known[0] == plan:
                fresh[plan.name] = known
            else:
                fresh[plan.name] = (plan, plan.schedule.next_after(now))
        self._next = fresh
        self._heap = [(due, name) for name, (_, due) in fresh.items()]
        heapq.heapify(self._heap)

    async def publish_due(self) -> int:
        """Publish every tick that is due; returns how many."""
        now = self.clock.now()
        due: list[tuple[ScheduledPlan, datetime]] = []
        while self._heap and self._heap[0][0] <= now:
            at, name = heapq.heappop(self._heap)
            entry = self._next.get(name)
            if entry is None or entry[1] != at:
                continue  # a stale heap entry (the plan changed or went)
            plan = entry[0]
            due.append((plan, at))
            following = plan.schedule.next_after(max(at, now - TICK_GIVE_UP))
            self._next[name] = (plan, following)
            heapq.heappush(self._heap, (following, name))
        if due:
            await asyncio.gather(*(self._publish(plan, at) for plan, at in due))
        return len(due)

    async def _publish(self, plan: ScheduledPlan, due_at: datetime) -> None:
        trigger = scheduled_trigger(plan, due_at)
        while True:
            try:
                duplicate = await self.bus.publish(trigger)
            except BusUnavailable as exc:
                if self.clock.now() - due_at > TICK_GIVE_UP:
                    log.error("plan %s: tick %s not published: %s", plan.name, due_at, exc)
                    TICKS.labels("lost").inc()
                    return
                await asyncio.sleep(1.0)
                continue
            TICK_LAG.observe(max(0.0, (self.clock.now() - due_at).total_seconds()))
            TICKS.labels("duplicate" if duplicate else "stored").inc()
            return
