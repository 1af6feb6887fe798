"""E-mails as bytes, in the outbox and over SMTP (a real aiosmtpd): a long subject stays on one
line where it may, and otherwise folds so that it decodes to exactly the original."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from services.notifier.channels.mail import OutboxMailer, SmtpMailer
from services.notifier.channels.wire import subject_header
from shared.config import NotifierSettings
from tests.support import SmtpSink

ASCII = ("[PROBLEM] Backup job nightly-fileserver-with-a-long-name failed: disk full on "
         "/srv/backup/volume1 of customer Example Corp [BS-0123456789]")
NON_ASCII = ("[PROBLEM] Sicherung nightly fehlgeschlagen: Datenträger voll auf "
             "/srv/backup/volume1 für Kunde Müller & Söhne GmbH, Zürich [BS-0123456789]")
LONG_WORD = "[PROBLEM] Backup job x failed: " + "a" * 100 + " [BS-0123456789]"


def message(subject: str) -> EmailMessage:
    built = EmailMessage()
    built["Subject"] = subject
    built["From"] = "backstop@example.com"
    built["To"] = "ops@customer.example"
    built["Message-ID"] = f"<{abs(hash(subject))}@backstop>"
    built.set_content("Grüße: the body.\n")
    return built


def subject_lines(raw: bytes) -> list[bytes]:
    """The raw lines of the Subject header: its first line and any continuation lines."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(b"subject:"))
    lines = [head[start]]
    for line in head[start + 1:]:
        if line[:1] not in (b" ", b"\t"):
            break
        lines.append(line)
    return lines


def decoded_subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["Subject"])


@pytest.mark.parametrize("subject", [ASCII, LONG_WORD])
async def test_ascii_subjects_are_one_line_in_the_outbox(tmp_path: Path, subject: str):
    await OutboxMailer(tmp_path).send(message(subject))
    raw = _written(tmp_path)
    assert subject_lines(raw) == [b"Subject: " + subject.encode()]


async def test_non_ascii_subject_in_the_outbox_folds_between_whole_words(tmp_path: Path):
    await OutboxMailer(tmp_path).send(message(NON_ASCII))
    raw = _written(tmp_path)
    lines = subject_lines(raw)
    assert all(len(line) <= 76 for line in lines), lines  # RFC 2047: encoded-word lines
    assert all(line.isascii() for line in lines)
    assert decoded_subject(raw) == NON_ASCII
    # Never inside a word: a reader that shows folding white space still shows whole words.
    naive = b" ".join(line.strip() for line in lines).decode()
    for word in ("Datenträger", "Müller", "Söhne", "Zürich"):
        assert _words_of(naive).count(word) == 1, naive


@pytest.mark.parametrize("subject", [ASCII, LONG_WORD])
async def test_ascii_subjects_are_one_line_over_smtp(
    smtp_server: tuple[Controller, SmtpSink], subject: str
):
    controller, sink = smtp_server
    await SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port)).send(
        message(subject))
    assert subject_lines(sink.raw[0]) == [b"Subject: " + subject.encode()]
    assert "BODY=8BITMIME" in sink.mail_options[0]  # still offered and used


async def test_non_ascii_subject_over_smtp_is_rfc2047_folded_between_words(
    smtp_server: tuple[Controller, SmtpSink]
):
    controller, sink = smtp_server  # offers SMTPUTF8: not asked for a subject alone
    await SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port)).send(
        message(NON_ASCII))
    lines = subject_lines(sink.raw[0])
    assert all(line.isascii() and len(line) <= 76 for line in lines), lines
    assert decoded_subject(sink.raw[0]) == NON_ASCII
    assert "SMTPUTF8" not in sink.mail_options[0]
    assert sink.messages[0].get_content().startswith("Grüße")


async def test_with_a_non_ascii_address_smtputf8_carries_the_subject_on_one_line(
    smtp_server: tuple[Controller, SmtpSink]
):
    controller, sink = smtp_server
    mail = message(NON_ASCII)
    mail.replace_header("To", "müller@kunde.example")
    await SmtpMailer(NotifierSettings(smtp_host="127.0.0.1", smtp_port=controller.port)).send(
        mail)
    assert subject_lines(sink.raw[0]) == [b"Subject: " + NON_ASCII.encode()]
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(sink.mail_options[0])
    assert decoded_subject(sink.raw[0]) == NON_ASCII


def _written(folder: Path) -> bytes:
    [eml] = list(folder.glob("*.eml"))
    return eml.read_bytes()


def _words_of(text: str) -> list[str]:
    decoded = str(email.message_from_string(f"Subject: {text}\n\n", policy=policy.default)
                  ["Subject"])
    return re.findall(r"\w+", decoded)


@pytest.mark.parametrize("subject", [
    NON_ASCII, "Ünïcödé " + "ä" * 40 + " =?x?= end", "ä b ü", "日本語のサブジェクト " * 6,
    "plain =?utf-8?q?looks_encoded?= text", "a" * 120 + " ü"])
def test_folded_subjects_decode_to_exactly_the_original(subject: str):
    header = subject_header(subject, utf8=False, linesep="\r\n").encode("ascii")
    lines = header.rstrip(b"\r\n").split(b"\r\n")
    assert all(len(line) <= 76 or b"=?" not in line for line in lines), lines
    assert decoded_subject(header + b"\r\n") == subject
