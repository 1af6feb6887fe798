"""Metrics: sent/failed by channel and reason, suppressed by reason, dead, latency, depth."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from services.notifier import admin, silences
from shared.db import Database
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, Clock, alert, make_notifier, settle
from tests.support import make_account, tenant_of


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_counters_move(sqlite_db: Database, webhook_receiver: Receiver):
    issued = make_account(sqlite_db, contacts=["ops@example.com"])
    silenced = make_account(sqlite_db, customer="Quiet", contacts=["q@example.com"])
    clock = Clock()
    with sqlite_db.session() as s:
        admin.add_webhook(s, reseller="Reseller", customer="Customer", url=webhook_receiver.url,
                          fmt="backstop", keys=KEYS, targets=LOCAL)
        silences.add(s, reseller_id=silenced.reseller.id, customer_id=silenced.customer.id,
                     starts_at=clock.now, ends_at=clock.now + timedelta(hours=1))
    before = {
        "sent": value("backstop_notifications_sent_total", channel="webhook"),
        "failed": value("backstop_notifications_failed_total", channel="webhook",
                        reason="http_5xx"),
        "dead": value("backstop_notifications_dead_total", channel="webhook", reason="http_4xx"),
        "silenced": value("backstop_notifications_suppressed_total", reason="silenced"),
        "latency": value("backstop_notification_latency_seconds_count", channel="email"),
    }
    webhook_receiver.replies = [(500, {}), (404, {})]
    notifier = make_notifier(sqlite_db, clock=clock)
    await notifier.handle(alert(tenant_of(issued)))
    await notifier.handle(alert(tenant_of(silenced)))
    await settle(notifier)
    assert value("backstop_notifications_failed_total", channel="webhook",
                 reason="http_5xx") == before["failed"] + 1
    clock.advance(60)
    await settle(notifier)
    assert value("backstop_notifications_dead_total", channel="webhook",
                 reason="http_4xx") == before["dead"] + 1
    assert value("backstop_notifications_suppressed_total",
                 reason="silenced") == before["silenced"] + 1
    assert value("backstop_notification_latency_seconds_count",
                 channel="email") == before["latency"] + 1
    await notifier.dispatcher._update_depth()
    assert value("backstop_notifications_queue_depth", status="dead") == 1
    assert value("backstop_notifications_sent_total", channel="webhook") == before["sent"]
