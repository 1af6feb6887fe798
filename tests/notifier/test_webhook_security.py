"""Webhooks reach only permitted addresses, leak no URL secrets into logs or stored errors, and
take only signing secrets of Standard Webhooks' minimum strength."""

from __future__ import annotations

import base64
import ipaddress
import logging
import socket
import uuid
from typing import Any

import pytest
from sqlmodel import select
from standardwebhooks import Webhook

from services.notifier import admin, formats
from services.notifier.emails import TenantNames
from services.notifier.errors import DeliveryError
from services.notifier.tables import DeliveryAttempt, Notification, WebhookEndpoint
from services.notifier.targets import TargetPolicy, check_url, literal_address
from services.notifier.webhooks import WebhookSender
from shared.db import Database
from shared.events import Tenant
from shared.natsd import free_port
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, Clock, alert, make_notifier, settle
from tests.support import make_account, tenant_of

# Every form in the issue, and the encodings of 127.0.0.1 the C resolver also accepts.
INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./computeMetadata/v1/",
    "http://localhost:9090/metrics",
    "http://api.localhost/",
    "http://[::1]:9090/metrics",
    "http://0.0.0.0:9090/metrics",
    "http://2130706433:9090/metrics",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.0.1./",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://user:pass@psa.example/hook",
    "http://psa.example@169.254.169.254/",
    "ftp://psa.example/hook",
    "file:///etc/passwd",
]


def _add(db: Database, url: str, policy: TargetPolicy | None = None, **kw: Any) -> str:
    with db.session() as s:
        new = admin.add_webhook(s, reseller="Reseller", customer=None, url=url,
                                fmt=kw.pop("fmt", "backstop"), keys=KEYS, targets=policy, **kw)
        return new.endpoint.id


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_add_refuses_internal_targets_and_credentials(sqlite_db: Database, url: str) -> None:
    make_account(sqlite_db)
    with pytest.raises(admin.ConfigError, match="webhook URL refused"):
        _add(sqlite_db, url)


def test_add_accepts_public_names_and_allowed_networks(sqlite_db: Database) -> None:
    make_account(sqlite_db)
    _add(sqlite_db, "https://psa.example/hook?token=abc")
    _add(sqlite_db, "https://93.184.215.14:8443/hook")
    with pytest.raises(admin.ConfigError, match="BACKSTOP_WEBHOOK_ALLOW_NETWORKS"):
        _add(sqlite_db, "http://10.1.2.3:8080/tickets")
    on_premises = TargetPolicy.parse("10.1.2.0/24")
    _add(sqlite_db, "http://10.1.2.3:8080/tickets", on_premises)
    with pytest.raises(admin.ConfigError):  # the allow-list opens that network only
        _add(sqlite_db, "http://10.1.3.1/", on_premises)


def test_policy_sees_through_encodings() -> None:
    strict = TargetPolicy()
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    for text in ("::ffff:7f00:1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "ff02::1",
                 "255.255.255.255", "240.0.0.1", "198.18.0.1"):
        assert not strict.permits(ipaddress.ip_address(text)), text
    assert strict.permits(ipaddress.ip_address("93.184.215.14"))
    assert strict.permits(ipaddress.ip_address("2606:4700::1111"))
    allowed = TargetPolicy.parse("127.0.0.0/8, ::1")
    assert allowed.permits(ipaddress.ip_address("::ffff:127.0.0.1"))
    with pytest.raises(ValueError, match="not a network"):
        TargetPolicy.parse("10.0.0.0/33")
    check_url("https://psa.example/hook", strict)


def test_signing_secret_shorter_than_24_bytes_is_refused(sqlite_db: Database) -> None:
    make_account(sqlite_db)
    short = "whsec_" + base64.b64encode(b"x" * 23).decode()
    with pytest.raises(admin.ConfigError, match="minimum is 24 bytes"):
        _add(sqlite_db, "https://psa.example/hook", secret=short)
    with pytest.raises(admin.ConfigError, match="not base64"):
        _add(sqlite_db, "https://psa.example/hook", secret="whsec_correct horse")
    _add(sqlite_db, "https://psa.example/hook",
         secret="whsec_" + base64.b64encode(b"y" * 24).decode())


# --- at delivery: the resolved address counts ------------------------------------------------


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """DNS answers for made-up names (the rest goes to the real resolver); the calls are kept
    under ``"calls"``."""
    answers: dict[str, list[str]] = {"calls": []}
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            answers["calls"].append(name)
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, int(port))) for a in answers[name]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


def _context() -> formats.Context:
    names = TenantNames("r", "c", "a")
    return formats.Context(alert(Tenant(reseller="r", customer="c", account="a")), "firing",
                           names, names, "https://bs.test/a", "e1")


def _endpoint(url: str, secret: str | None = None) -> WebhookEndpoint:
    return WebhookEndpoint(id="e1", reseller_id="r", url=url, format="backstop",
                           secret=KEYS.seal(secret) if secret else None)


async def test_name_resolving_inward_is_refused_before_connecting(
    webhook_receiver: Receiver, resolver: dict[str, list[str]],
) -> None:
    port = webhook_receiver.url.rsplit(":", 1)[1].split("/")[0]
    # Checked as a public name when added, resolving to 127.0.0.1 now (DNS rebinding).
    resolver["hooks.psa.example"] = ["127.0.0.1"]
    resolver["mixed.psa.example"] = ["93.184.215.14", "127.0.0.1"]
    sender = WebhookSender(timeout=2.0, keys=KEYS)
    try:
        for name in ("hooks.psa.example", "mixed.psa.example"):
            with pytest.raises(DeliveryError) as refused:
                await sender.send(_endpoint(f"http://{name}:{port}/hook"), _context(), "k1")
            assert refused.value.reason == "target_refused" and not refused.value.retryable
            assert str(refused.value) == f"webhook e1 ({name}): target address not allowed"
        closed = free_port()  # an open and a closed port look the same
        with pytest.raises(DeliveryError) as also_refused:
            await sender.send(_endpoint(f"http://hooks.psa.example:{closed}/"), _context(), "k")
        assert str(also_refused.value).endswith("target address not allowed")
        for host in ("localhost", "2130706433", "[::ffff:127.0.0.1]"):
            url = f"http://{host}:{port}/hook"
            with pytest.raises(DeliveryError, match="target address not allowed"):
                await sender.send(_endpoint(url), _context(), "k1")
    finally:
        await sender.close()
    assert webhook_receiver.requests == []


async def test_allowed_name_is_connected_at_the_checked_address(
    webhook_receiver: Receiver, resolver: dict[str, list[str]],
) -> None:
    port = webhook_receiver.url.rsplit(":", 1)[1].split("/")[0]
    resolver["tickets.on-prem.example"] = ["127.0.0.1"]
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    sender = WebhookSender(timeout=2.0, keys=KEYS, policy=LOCAL)
    try:
        status = await sender.send(
            _endpoint(f"http://tickets.on-prem.example:{port}/hook", secret), _context(), "k1")
    finally:
        await sender.close()
    assert status == 202
    # Resolved once, by the check; the connection went to that address, not to a new lookup.
    assert resolver["calls"] == ["tickets.on-prem.example"]
    (request,) = webhook_receiver.requests
    assert request.headers["Host"] == f"tickets.on-prem.example:{port}"
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "alert.trigger"


async def test_redirects_are_not_followed(webhook_receiver: Receiver) -> None:
    webhook_receiver.replies = [(307, {"Location": "http://169.254.169.254/latest/"})]
    sender = WebhookSender(timeout=2.0, keys=KEYS, policy=LOCAL)
    try:
        with pytest.raises(DeliveryError) as answer:
            await sender.send(_endpoint(webhook_receiver.url), _context(), "k1")
    finally:
        await sender.close()
    assert answer.value.http_status == 307 and not answer.value.retryable
    assert len(webhook_receiver.requests) == 1


# --- no URL secrets in logs or stored errors -------------------------------------------------


async def test_url_credentials_appear_in_no_log_and_no_stored_error(
    sqlite_db: Database, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = make_account(sqlite_db, contacts=[])
    base = webhook_receiver.url.replace("http://", "http://hook-user:pa55word@")
    closed = f"http://hook-user:pa55word@127.0.0.1:{free_port()}/hook?token=tok3n-secret"
    with sqlite_db.session() as s:  # rows from before URLs with credentials were refused
        for url in (base + "?token=tok3n-secret", closed):
            s.add(WebhookEndpoint(id=uuid.uuid4().hex[:16], reseller_id=issued.reseller.id,
                                  url=url, format="alertmanager"))
    webhook_receiver.replies = [(500, {})]
    clock = Clock()
    notifier = make_notifier(sqlite_db, clock=clock)
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    clock.advance(3600)
    await settle(notifier)

    assert len(webhook_receiver.requests) == 2  # the 500, then the retry that went through
    assert webhook_receiver.requests[-1].path == "/hook?token=tok3n-secret"
    assert webhook_receiver.requests[-1].headers["Authorization"].startswith("Basic ")
    with sqlite_db.session() as s:
        errors = [a.error or "" for a in s.exec(select(DeliveryAttempt)).all()]
        errors += [n.last_error or "" for n in s.exec(select(Notification)).all()]
    assert any("127.0.0.1" in e for e in errors), errors  # the host is named
    everything = caplog.text + "\n".join(errors)
    assert "tok3n-secret" not in everything and "pa55word" not in everything
