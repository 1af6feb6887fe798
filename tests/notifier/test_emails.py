"""E-mail: templates per kind and transition, autoescaping, branding, real SMTP (aiosmtpd)."""

from __future__ import annotations

import re
import smtplib
import ssl
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, select

from services.notifier import admin, emails
from services.notifier.emails import Brand, Item, TenantNames, render
from services.notifier.errors import DeliveryError
from services.notifier.mail import OutboxMailer, SmtpMailer
from services.notifier.tables import Notification
from shared.config import NotifierSettings
from shared.db import Database
from shared.events import Tenant
from shared.natsd import free_port
from tests.notifier.support import Clock, alert, make_notifier, settle
from tests.support import SmtpSink, make_account, rename_unchecked, tenant_of

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


# --- client text in headers, and messages that cannot be built -------------------------------

# Characters a client can put into a run message, a job name (ping slug), client name/version,
# or an operator into a brand or customer name: none may break or inject a header.
# (No NUL: the events refuse it at decode, see tests/shared/test_events.py, and the sanitiser's
# own tests cover it in test_headers.py.)
TAINTS = {"lf": "\n", "cr": "\r", "crlf": "\r\n", "esc": "\x1b", "del": "\x7f",
          "nel": "\x85", "vt": "\x0b", "tab": "\t", "ls": "\u2028", "ps": "\u2029"}
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _header_lines(raw: bytes) -> list[bytes]:
    """The raw header lines, folding undone: none may hold a control byte (bare CR, LF, …)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return re.sub(rb"\r\n[ \t]", b" ", head).split(b"\r\n")


def _clean_on_the_wire(raw: bytes) -> bool:
    return not any(CONTROL_BYTES.search(line) for line in _header_lines(raw))


def _notifications(db: Database) -> list[Notification]:
    with db.session() as s:
        return list(s.exec(select(Notification).order_by(col(Notification.id))).all())


@pytest.mark.parametrize("taint", TAINTS.values(), ids=TAINTS.keys())
async def test_client_text_with_control_characters_is_mailed_with_a_clean_subject(
    sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink], taint: str
) -> None:
    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    # Names are checked on creation today; older rows, or other tools' writes, may hold anything.
    rename_unchecked(sqlite_db, issued, customer=f"Acme{taint}Corp")
    with sqlite_db.session() as s:
        admin.set_brand(s, "Reseller", name=f"Acme{taint}IT", sender="alerts@acme-it.example",
                        footer=f"Your{taint}team")
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    tenant = tenant_of(issued)
    for event in (
        alert(tenant, summary=f"Backup job nightly failed: disk{taint}full"),  # run message
        alert(tenant, job=f"nightly{taint}", summary=f"Backup job nightly{taint} failed"),  # slug
        alert(tenant, kind="outdated_client", job=None,  # client_name and client_version
              summary=f"Veeam{taint}Agent 1.0{taint} is older than the minimum 2.0",
              details={"client_name": f"Veeam{taint}Agent", "client_version": f"1.0{taint}"}),
    ):
        await notifier.handle(event)
    await settle(notifier)

    assert [(r.status, r.attempts) for r in _notifications(sqlite_db)] == [("sent", 1)] * 3
    subjects = sorted(str(m["Subject"]).strip() for m in sink.messages)
    assert [s.split(" [BS-")[0] for s in subjects] == [
        "[PROBLEM] Backup job nightly failed",
        "[PROBLEM] Backup job nightly failed: disk full",
        "[PROBLEM] Veeam Agent 1.0 is older than the minimum 2.0",
    ]
    for message, raw in zip(sink.messages, sink.raw, strict=True):
        assert str(message["From"]) == "Acme IT <alerts@acme-it.example>"
        assert all(str(message[h]).isprintable() for h in message.keys())
        assert _clean_on_the_wire(raw), _header_lines(raw)


async def test_digest_subject_with_a_tainted_customer_name(
    sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    rename_unchecked(sqlite_db, issued, customer="Acme\r\nBcc: all@example.com")
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    clock = Clock()
    notifier = make_notifier(sqlite_db, mailer=mailer, clock=clock, group_window=60)
    await notifier.handle(alert(tenant_of(issued)))
    await notifier.handle(alert(tenant_of(issued), job="weekly"))
    await settle(notifier)
    clock.advance(61)
    await settle(notifier)
    [message] = sink.messages
    assert str(message["Subject"]).strip() == "[PROBLEM] 2 backup alerts for Acme Bcc: " \
        "all@example.com"
    assert message["Bcc"] is None
    assert _clean_on_the_wire(sink.raw[0]), _header_lines(sink.raw[0])


async def test_a_message_that_cannot_be_built_is_dead_after_one_attempt(
    sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    # An address is not sanitised (that could mail someone else): it cannot be built at all.
    issued = make_account(sqlite_db, contacts=["ops@customer.example\nBcc: all@example.com",
                                               "fine@customer.example"])
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    clock = Clock()
    notifier = make_notifier(sqlite_db, mailer=mailer, clock=clock)
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    clock.advance(3600)
    await settle(notifier)  # a dead letter is never tried again

    fine, bad = sorted(_notifications(sqlite_db), key=lambda r: r.target)
    assert (fine.status, fine.attempts) == ("sent", 1)
    assert (bad.status, bad.attempts) == ("dead", 1)
    assert bad.last_error is not None and bad.last_error.startswith("cannot be built")
    assert [str(m["To"]) for m in sink.messages] == ["fine@customer.example"]
    with sqlite_db.session() as s:
        assert [a.status for a in admin.attempts(s, bad.id or 0)] == ["dead"]


async def test_a_template_failure_is_dead_at_once(sqlite_db: Database, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    monkeypatch.setattr(emails, "_template", lambda *_: "no-such-template.txt.j2")
    notifier = make_notifier(sqlite_db, mailer=OutboxMailer(tmp_path / "outbox"))
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    [row] = _notifications(sqlite_db)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "no-such-template" in (row.last_error or "")
    assert not (tmp_path / "outbox").exists()


async def test_smtp_recipient_refused_4xx_retries_5xx_dead(
    sqlite_db: Database, smtp_server: tuple[Controller, SmtpSink]
) -> None:
    controller, sink = smtp_server
    issued = make_account(sqlite_db, contacts=["a@customer.example"])
    mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port))
    notifier = make_notifier(sqlite_db, mailer=mailer)
    sink.refuse_rcpt_with = "450 4.2.0 greylisted, try again later"
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    sink.refuse_rcpt_with = "550 5.1.1 no such user"
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert [(r.status, r.attempts) for r in _notifications(sqlite_db)] == [
        ("pending", 1), ("dead", 1)]


async def test_smtp_authentication_failure_is_retried(sqlite_db: Database) -> None:
    """A wrong SMTP password is the operator's to fix: alerts wait for it, not dead-lettered."""
    from aiosmtpd.smtp import AuthResult

    def refuse(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=refuse,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        issued = make_account(sqlite_db, contacts=["a@customer.example"])
        mailer = SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                             smtp_username="backstop", smtp_password="wrong"))
        notifier = make_notifier(sqlite_db, mailer=mailer)
        await notifier.handle(alert(tenant_of(issued)))
        await settle(notifier)
        [row] = _notifications(sqlite_db)
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error is not None and "535" in row.last_error
    finally:
        controller.stop()


def test_a_brand_sender_that_is_not_an_address_is_refused(sqlite_db: Database) -> None:
    make_account(sqlite_db)
    with sqlite_db.session() as s, pytest.raises(admin.ConfigError, match="not an e-mail"):
        admin.set_brand(s, "Reseller", sender="alerts@acme.example\r\nBcc: all@example.com")
