"""A failed-run alert's e-mail and webhooks carry the failing run's message and the end of its
log (escaped in HTML), through a real SMTP server and a real webhook receiver; the resolve does
not repeat them."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from services.notifier import admin
from services.notifier.channels.mail import SmtpMailer
from shared.config import NotifierSettings
from shared.db import Database
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, alert, make_notifier, settle
from tests.support import SmtpSink, make_account, tenant_of

DETAILS = {"consecutive_failures": 1, "tolerance": 1, "status": "failure", "exit_code": 2,
           "message": "disk <full> & more",
           "log_tail": "[… 10 bytes before this cut by Backstop …]\n"
                       "Creating archive\n<script>alert(1)</script> ERROR: No space left"}


async def test_the_mail_carries_the_message_and_the_escaped_log_tail(
        sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink]) -> None:
    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    fired = alert(tenant_of(issued), summary="Backup job nightly failed: disk <full> & more",
                  details=DETAILS)
    await notifier.handle(fired)
    await notifier.handle(alert(tenant_of(issued), state="resolved", sequence=2,
                                fingerprint=fired.fingerprint, details=DETAILS))
    await settle(notifier)
    firing, resolved = sink.messages
    text = firing.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = firing.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Message:   disk <full> & more" in text
    assert "    <script>alert(1)</script> ERROR: No space left" in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ERROR: No space left" in html
    assert "disk &lt;full&gt; &amp; more" in html
    assert f"/alerts/{fired.fingerprint}" in html
    resolved_text = resolved.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "No space left" not in resolved_text and "Message:" not in resolved_text


async def test_webhooks_carry_the_message_and_the_log_tail(
        sqlite_db: Database, webhook_receiver: Receiver) -> None:
    issued = make_account(sqlite_db, contacts=[])
    with sqlite_db.session() as s:
        for fmt in ("backstop", "alertmanager"):
            admin.add_webhook(s, reseller="Reseller", customer="Customer",
                              url=f"{webhook_receiver.url}?{fmt}", fmt=fmt, keys=KEYS,
                              targets=LOCAL)
    notifier = make_notifier(sqlite_db)
    await notifier.handle(alert(tenant_of(issued), details=DETAILS))
    await settle(notifier)
    bodies = {r.path.split("?")[-1]: r.json() for r in webhook_receiver.requests}
    details = bodies["backstop"]["data"]["alert"]["details"]
    assert (details["message"], details["log_tail"]) == (DETAILS["message"], DETAILS["log_tail"])
    annotations = bodies["alertmanager"]["alerts"][0]["annotations"]
    assert annotations["log_tail"] == DETAILS["log_tail"]
    assert annotations["message"] == DETAILS["message"]
