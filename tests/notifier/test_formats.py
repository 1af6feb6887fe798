"""Webhook formats: Backstop (Standard Webhooks signed), Alertmanager v4, PagerDuty Events v2,
as a real HTTP receiver gets them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.notifier import admin, formats
from services.notifier.emails import TenantNames
from services.notifier.signing import new_secret, signed_headers
from shared.db import Database
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, alert, make_notifier, settle
from tests.support import make_account, tenant_of


def _context(transition: str = "firing", summary: str = "x") -> formats.Context:
    from shared.events import Tenant

    tenant = Tenant(reseller="r1", customer="c1", account="a1")
    a = alert(tenant, summary=summary, fingerprint="f" * 32,
              state="resolved" if transition == "resolved" else "firing")
    return formats.Context(a, transition, TenantNames("r1", "c1", "a1"),
                           TenantNames("MSP", "Acme", "srv1"), "https://bs/alerts/f", "ep1")


def test_signature_roundtrip_and_tampering():
    secret = new_secret()
    body = '{"a":1}'
    headers = signed_headers(secret, "msg_1", body, datetime.now(UTC))
    assert Webhook(secret).verify(body, headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_backstop_payload_caps_summary_and_keeps_external_id_stable():
    firing = formats.backstop(_context("firing", "s" * 2000))["data"]
    resolved = formats.backstop(_context("resolved"))["data"]
    reminder = formats.backstop(_context("reminder"))["data"]
    assert firing["action"] == "trigger" and resolved["action"] == "resolve"
    assert reminder["action"] == "trigger" and reminder["reminder"] is True
    assert firing["external_id"] == resolved["external_id"] == reminder["external_id"]
    assert len(firing["alert"]["summary"]) == formats.SUMMARY_MAX
    assert firing["customer"] == {"id": "c1", "name": "Acme"}
    assert firing["reseller"] == {"id": "r1", "name": "MSP"}
    assert firing["alert"]["severity"] == "error" and firing["link"] == "https://bs/alerts/f"


def test_alertmanager_v4_shape():
    body = formats.alertmanager(_context("firing"))
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["endsAt"] == formats.ZERO_TIME
    assert body["alerts"][0]["labels"]["alertname"] == "failed_run"
    assert {"groupKey", "truncatedAlerts", "receiver", "groupLabels", "commonLabels",
            "commonAnnotations", "externalURL", "alerts"} <= set(body)
    resolved = formats.alertmanager(_context("resolved"))
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != formats.ZERO_TIME


def test_pagerduty_trigger_and_resolve():
    trigger = formats.pagerduty(_context("firing", "p" * 3000), "RK")
    resolve = formats.pagerduty(_context("resolved"), "RK")
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] and len(trigger["dedup_key"]) <= 255
    assert trigger["routing_key"] == "RK"
    assert len(trigger["payload"]["summary"]) == 1024
    assert trigger["payload"]["severity"] in {"critical", "error", "warning", "info"}
    assert "payload" not in resolve


@pytest.mark.parametrize("fmt", ["backstop", "alertmanager", "pagerduty"])
async def test_each_format_reaches_a_real_receiver(fmt: str, sqlite_db: Database,
                                                   webhook_receiver: Receiver):
    issued = make_account(sqlite_db, contacts=[])
    with sqlite_db.session() as s:
        new = admin.add_webhook(s, reseller="Reseller", customer="Customer",
                                url=webhook_receiver.url, fmt=fmt,
                                secret="ROUTINGKEY" if fmt == "pagerduty" else None,
                                keys=KEYS, targets=LOCAL)
        secret = new.generated_secret
    notifier = make_notifier(sqlite_db)
    fired = alert(tenant_of(issued))
    await notifier.handle(fired)
    await notifier.handle(alert(tenant_of(issued), state="resolved", sequence=2,
                                fingerprint=fired.fingerprint))
    await settle(notifier)
    first, second = webhook_receiver.requests
    if fmt == "backstop":
        assert secret and secret.startswith("whsec_")
        bodies = [Webhook(secret).verify(r.body, r.headers) for r in (first, second)]
        assert [b["data"]["action"] for b in bodies] == ["trigger", "resolve"]
        assert bodies[0]["data"]["external_id"] == bodies[1]["data"]["external_id"]
        assert bodies[0]["data"]["customer"]["id"] == issued.customer.id
    elif fmt == "alertmanager":
        assert [r.json()["status"] for r in (first, second)] == ["firing", "resolved"]
        assert "webhook-signature" not in first.headers
    else:
        assert [r.json()["event_action"] for r in (first, second)] == ["trigger", "resolve"]
        assert first.json()["routing_key"] == "ROUTINGKEY"
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
