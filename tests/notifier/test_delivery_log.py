"""Every delivery outcome (sent, retry, dead, suppressed) leaves one line with ids as fields,
and never a secret (the webhook URL's token, the signing secret) nor a recipient's address.
Real webhook receiver, both database backends."""

from __future__ import annotations

import logging

import pytest
from aiosmtpd.controller import Controller

from services.notifier import admin
from services.notifier.backoff import Schedule
from services.notifier.mail import SmtpMailer
from shared.config import NotifierSettings
from shared.db import Database
from shared.logs import JsonFormatter
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, Clock, MemoryMailer, alert, make_notifier, settle
from tests.support import SmtpSink, make_account, tenant_of

TOKEN = "T0KEN-in-the-path"
QUERY = "s3cret-in-the-query"


def _hook(db: Database, receiver: Receiver) -> tuple[str, str]:
    """A signed endpoint whose URL carries secrets, as Slack's or a PSA's do."""
    with db.session() as s:
        new = admin.add_webhook(s, reseller="Reseller", customer=None, keys=KEYS, targets=LOCAL,
                                url=f"{receiver.url}/{TOKEN}?token={QUERY}", fmt="backstop")
        return new.endpoint.id, new.generated_secret or ""


def delivery_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "delivery"]


def _fields(record: logging.LogRecord, *names: str) -> dict[str, object]:
    return {name: getattr(record, name) for name in names}


def _no_secret(record: logging.LogRecord, *secrets: str) -> None:
    line = JsonFormatter().format(record)
    for secret in (TOKEN, QUERY, *secrets):
        assert secret not in line


async def test_sent_leaves_one_line_per_notification(
    db: Database, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    issued = make_account(db, contacts=["jane.doe@customer.example"])
    endpoint_id, secret = _hook(db, webhook_receiver)
    notifier = make_notifier(db, mailer=MemoryMailer())
    event = alert(tenant_of(issued))
    await notifier.handle(event)
    await settle(notifier)

    lines = sorted(delivery_lines(caplog), key=lambda r: r.channel)  # type: ignore[attr-defined]
    assert [(r.getMessage(), r.levelno) for r in lines] == [("delivery sent", logging.INFO)] * 2
    email, webhook = lines
    tenant = event.tenant
    common = {"outcome": "sent", "fingerprint": event.fingerprint, "sequence": 1,
              "transition": "firing", "reseller_id": tenant.reseller,
              "customer_id": tenant.customer, "account_id": tenant.account, "attempts": 1}
    for record in lines:
        assert _fields(record, *common) == common
        assert isinstance(record.notification_id, int)  # type: ignore[attr-defined]
        assert record.duration_ms >= 0  # type: ignore[attr-defined]
        _no_secret(record, secret, "jane.doe")
    assert _fields(email, "channel", "recipient_domain") == {
        "channel": "email", "recipient_domain": "customer.example"}
    assert _fields(webhook, "channel", "endpoint_id", "endpoint_host", "http_status") == {
        "channel": "webhook", "endpoint_id": endpoint_id, "endpoint_host": "127.0.0.1",
        "http_status": 202}


async def test_retry_then_dead_leave_one_line_each(
    db: Database, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    issued = make_account(db, contacts=[])
    endpoint_id, secret = _hook(db, webhook_receiver)
    clock = Clock()
    notifier = make_notifier(db, clock=clock, schedule=Schedule(base=1, jitter=0))
    webhook_receiver.replies = [(503, {}), (400, {})]
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    clock.advance(1)
    await settle(notifier)

    retry, dead = delivery_lines(caplog)
    assert (retry.getMessage(), retry.levelno) == ("delivery retry", logging.INFO)
    assert _fields(retry, "outcome", "attempts", "http_status", "reason", "endpoint_id") == {
        "outcome": "retry", "attempts": 1, "http_status": 503, "reason": "http_5xx",
        "endpoint_id": endpoint_id}
    assert retry.next_attempt_at  # type: ignore[attr-defined]
    # A dead letter means nobody was told: a warning.
    assert (dead.getMessage(), dead.levelno) == ("delivery dead", logging.WARNING)
    assert _fields(dead, "outcome", "attempts", "http_status", "reason") == {
        "outcome": "dead", "attempts": 2, "http_status": 400, "reason": "http_4xx"}
    assert "HTTP 400" in dead.error  # type: ignore[attr-defined]
    for record in (retry, dead):
        _no_secret(record, secret)


async def test_suppressed_leaves_one_line(
    db: Database, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    issued = make_account(db, contacts=["ops@example.com"])
    notifier = make_notifier(db)
    # A resolve of a firing nobody was told of: nobody needs to hear it is gone.
    event = alert(tenant_of(issued), state="resolved", sequence=2)
    await notifier.handle(event)
    await settle(notifier)
    (line,) = delivery_lines(caplog)
    assert line.getMessage() == "delivery suppressed" and line.levelno == logging.INFO
    assert _fields(line, "outcome", "reason", "fingerprint", "sequence", "transition",
                   "account_id") == {
        "outcome": "suppressed", "reason": "not_notified", "fingerprint": event.fingerprint,
        "sequence": 2, "transition": "resolved", "account_id": event.tenant.account}


async def test_an_address_the_smtp_server_quotes_is_cut_to_its_domain(
    sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    controller, sink = smtp_server
    sink.refuse_rcpt_with = "550 5.1.1 <jane.doe@customer.example>: no such user"
    issued = make_account(sqlite_db, contacts=["jane.doe@customer.example"])
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    (dead,) = delivery_lines(caplog)
    assert _fields(dead, "outcome", "channel", "reason", "recipient_domain") == {
        "outcome": "dead", "channel": "email", "reason": "rejected",
        "recipient_domain": "customer.example"}
    assert "no such user" in dead.error and "…@customer.example" in dead.error  # type: ignore[attr-defined]
    _no_secret(dead, "jane.doe")
