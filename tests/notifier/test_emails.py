"""E-mail: templates per kind and transition, autoescaping, branding, real SMTP (aiosmtpd)."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from services.notifier import admin
from services.notifier.emails import Brand, Item, TenantNames, render
from services.notifier.errors import DeliveryError
from services.notifier.mail import OutboxMailer, SmtpMailer
from shared.config import NotifierSettings
from shared.db import Database
from shared.events import Tenant
from shared.natsd import free_port
from tests.conftest import SmtpSink, make_account, tenant_of
from tests.notifier.support import alert, make_notifier, settle

NAMES = TenantNames("MSP", "Acme", "srv1")
TENANT = Tenant(reseller="r", customer="c", account="a")


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_html_is_autoescaped_and_text_is_not():
    a = alert(TENANT, summary="<script>alert(1)</script> & more")
    text, html = _parts(render(Item(a, "firing", NAMES, "https://x/a"), "to@x", Brand(), "k"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script> & more" in text


def test_templates_per_kind_and_transition():
    quota = alert(TENANT, kind="quota", job=None, summary="Quota 95%")
    text, _ = _parts(render(Item(quota, "firing", NAMES, "l"), "t@x", Brand(), "k"))
    assert "running out of space" in text
    text, _ = _parts(render(Item(quota, "resolved", NAMES, "l"), "t@x", Brand(), "k"))
    assert "running out of space" not in text and text.startswith("RESOLVED")
    reminder = render(Item(quota, "reminder", NAMES, "l"), "t@x", Brand(), "k")
    assert str(reminder["Subject"]).startswith("[REMINDER]")


def test_brand_name_sender_logo_footer():
    brand = Brand(name="Acme IT", sender="alerts@acme-it.example", footer="Acme IT, Main St 1",
                  logo_url="https://acme-it.example/logo.png")
    message = render(Item(alert(TENANT), "firing", NAMES, "l"), "t@x", brand, "k")
    text, html = _parts(message)
    assert str(message["From"]) == "Acme IT <alerts@acme-it.example>"
    assert "Acme IT, Main St 1" in text and 'src="https://acme-it.example/logo.png"' in html


async def test_branded_mail_through_real_smtp(sqlite_db: Database,
                                              smtp_server: tuple[Controller, SmtpSink]):
    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    with sqlite_db.session() as s:
        admin.set_brand(s, "Reseller", name="Acme IT", sender="alerts@acme-it.example",
                        footer="Your Acme IT team", logo_url="https://acme-it.example/l.png")
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    await notifier.handle(alert(tenant_of(issued), summary="Backup job nightly failed"))
    await settle(notifier)
    [message] = sink.messages
    assert str(message["From"]) == "Acme IT <alerts@acme-it.example>"
    assert str(message["To"]) == "ops@customer.example"
    assert "Your Acme IT team" in _parts(message)[0]
    assert "https://bs.test/alerts/" in _parts(message)[1]


async def test_smtp_4xx_retries_5xx_dead(sqlite_db: Database,
                                         smtp_server: tuple[Controller, SmtpSink]):
    from sqlmodel import col, select

    from services.notifier.tables import Notification

    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["a@customer.example"])
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    sink.reject_with = "451 try later"
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    sink.reject_with = "550 no such user"
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    with sqlite_db.session() as s:
        statuses = [r.status for r in s.exec(select(Notification).order_by(col(Notification.id)))]
    assert statuses == ["pending", "dead"]


async def test_outbox_when_no_smtp(sqlite_db: Database, tmp_path: Path):
    issued = make_account(sqlite_db, contacts=["a@customer.example"])
    notifier = make_notifier(sqlite_db, mailer=OutboxMailer(tmp_path / "outbox"))
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    [eml] = list((tmp_path / "outbox").glob("*.eml"))
    assert b"a@customer.example" in eml.read_bytes()


async def test_smtp_auth(sqlite_db: Database):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from shared.natsd import free_port

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            authenticator=authenticator, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        issued = make_account(sqlite_db, contacts=["a@customer.example"])
        good = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                           smtp_username="backstop", smtp_password="s3cret"))
        notifier = make_notifier(sqlite_db, mailer=good)
        await notifier.handle(alert(tenant_of(issued)))
        await settle(notifier)
        assert len(sink.messages) == 1
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return Certificate(cert, key)


def _tls_server(certificate: Certificate, mode: str) -> tuple[Controller, SmtpSink]:
    sink = SmtpSink()
    context = certificate.server_context()
    options = ({"tls_context": context, "require_starttls": True} if mode == "starttls"
               else {"ssl_context": context})
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller, sink


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_smtp_over_tls_with_a_private_ca(certificate: Certificate, mode: str) -> None:
    controller, sink = _tls_server(certificate, mode)
    try:
        mailer = SmtpMailer(NotifierSettings(
            smtp_host="127.0.0.1", smtp_port=controller.port, smtp_tls=mode,  # type: ignore[arg-type]
            smtp_ca_file=certificate.cert))
        await mailer.send(_message())
        assert [m["Subject"] for m in sink.messages] == ["tls check"]
    finally:
        controller.stop()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_smtp_refuses_a_certificate_it_cannot_verify(
    certificate: Certificate, mode: str
) -> None:
    controller, sink = _tls_server(certificate, mode)
    try:
        # No CA file: the system's trust store does not know the self-signed certificate.
        mailer = SmtpMailer(NotifierSettings(
            smtp_host="127.0.0.1", smtp_port=controller.port, smtp_tls=mode))  # type: ignore[arg-type]
        with pytest.raises(DeliveryError) as failure:
            await mailer.send(_message())
        assert failure.value.retryable and "CERTIFICATE_VERIFY_FAILED" in str(failure.value)
        assert sink.messages == []
    finally:
        controller.stop()


def test_starttls_server_refuses_plain_mail(certificate: Certificate) -> None:
    """The STARTTLS fixture really requires TLS, so the test above proves encryption."""
    controller, sink = _tls_server(certificate, "starttls")
    try:
        with smtplib.SMTP("127.0.0.1", controller.port) as client, \
                pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(_message())
        assert sink.messages == []
    finally:
        controller.stop()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "b@x.example", "t@x.example", "tls check"
    message.set_content("hello")
    return message
