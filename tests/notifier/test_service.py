"""The notifier as it runs: real nats-server, real webhook receiver, two replicas."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from services.notifier import admin
from services.notifier.service import run
from services.notifier.tables import DeliveryAttempt
from shared.bus import Bus
from shared.config import NotifierSettings
from shared.db import Database
from shared.runtime import Runtime
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEY, KEYS, LOCAL, LOCAL_NETWORKS, alert
from tests.support import eventually, make_account, tenant_of


async def test_two_replicas_with_redelivery_notify_once(
    bus: Bus, nats_url: str, sqlite_db: Database, webhook_receiver: Receiver, tmp_path: Path,
):
    issued = make_account(sqlite_db, contacts=["ops@example.com"])
    with sqlite_db.session() as s:
        admin.add_webhook(s, reseller="Reseller", customer=None, url=webhook_receiver.url,
                          fmt="alertmanager", keys=KEYS, targets=LOCAL)
    replicas = []
    for n in range(2):
        # One host: each needs its own name, or the second would take the first's leases.
        settings = NotifierSettings(outbox_dir=tmp_path / "outbox", nats_url=nats_url,
                                    database_url=sqlite_db.url, notifier_replica_id=f"n{n}",
                                    secret_keys=KEY, webhook_allow_networks=LOCAL_NETWORKS)
        replica_bus = Bus(nats_url)
        await replica_bus.connect()
        runtime = Runtime(bus=replica_bus, db=sqlite_db)
        replicas.append((runtime, asyncio.create_task(run(settings, runtime))))

    events = [alert(tenant_of(issued)) for _ in range(5)]
    for event in events:
        await bus.publish(event)
    # The same events again under new ids: what a redelivery or a re-publish looks like.
    for event in events:
        await bus.publish(event.model_copy(update={"event_id": event.event_id + "-again"}))

    await eventually(lambda: len(webhook_receiver.requests) >= 5, timeout=15)
    await eventually(lambda: len(list((tmp_path / "outbox").glob("*.eml"))) >= 5, timeout=15)
    await asyncio.sleep(0.5)
    assert len(webhook_receiver.requests) == 5
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 5
    with sqlite_db.session() as s:  # the outbox overwrites duplicates: count the attempts
        sent = s.exec(select(DeliveryAttempt).where(DeliveryAttempt.status == "sent")).all()
    assert len(sent) == 10
    for runtime, task in replicas:
        runtime.stop.set()
        await asyncio.wait_for(task, 15)
        await runtime.bus.close()
