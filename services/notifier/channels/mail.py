"""Sending e-mail: over SMTP, or into an outbox folder when no SMTP server is configured."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from services.notifier.channels import wire
from services.notifier.errors import DeliveryError
from shared.config import NotifierSettings


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class OutboxMailer:
    """Writes each message as ``.eml``; named after its Message-ID so a resend overwrites."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24]
        final = self.folder / f"{name}.eml"
        temp = final.with_suffix(".tmp")
        temp.write_bytes(wire.flatten(message))
        os.replace(temp, final)  # atomic: a reader never sees half a message


class SmtpMailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        # Certificates are always verified; a private CA is trusted by naming its bundle.
        self._tls = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_tls == "tls",
            start_tls=True if s.smtp_tls == "starttls" else False,
            tls_context=self._tls,
            timeout=30,
        )
        try:
            async with client:
                await _transfer(client, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients) from exc
        except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPHeloError,
                aiosmtplib.SMTPConnectResponseError) as exc:
            # About this server and our settings, not the message: retried while the
            # operator fixes it, like a server that is down.
            raise DeliveryError("smtp_session", f"{exc.code} {exc.message}",
                                retryable=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp_{exc.code // 100}xx", f"{exc.code} {exc.message}",
                                retryable=not _final(exc.code)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError("connection", repr(exc), retryable=True) from exc


async def _transfer(client: aiosmtplib.SMTP, message: EmailMessage) -> None:
    """Send ``message`` on a connected client, flattened by :mod:`wire` rather than by
    aiosmtplib (whose policy folds the subject), with the options aiosmtplib would choose for a
    message object: SMTPUTF8 when an address is not ASCII (refused by a server without it),
    BODY=8BITMIME when offered (else 7-bit bodies)."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()
    sender, recipients = _addresses(message, "From")[0], _addresses(message, "To")
    options: list[str] = []
    utf8 = not (sender + "".join(recipients)).isascii()
    if utf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "an address is not ASCII and the server does not offer SMTPUTF8")
        options.append("SMTPUTF8")
    eight_bit = client.supports_extension("8bitmime")
    if eight_bit:
        options.append("BODY=8BITMIME")
    data = wire.flatten(message, policy=wire.SMTP, utf8=utf8,
                        cte_type="8bit" if eight_bit else "7bit")
    await client.sendmail(sender, recipients, data, mail_options=options)


def _addresses(message: EmailMessage, header: str) -> list[str]:
    value = message[header]
    return [a.addr_spec for a in getattr(value, "addresses", ())] or [str(value)]


def _final(code: int) -> bool:
    # 5xx is the server's final word on this message; 4xx means "later" (greylisting, a full
    # mailbox, a busy server).
    return 500 <= code < 600


def _refused(recipients: list[aiosmtplib.SMTPRecipientRefused]) -> DeliveryError:
    """Each e-mail has one recipient; should there be more, one deferral makes it a retry."""
    text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in recipients)
    final = all(_final(r.code) for r in recipients)
    return DeliveryError("rejected" if final else "deferred", text, retryable=not final)


def mailer_for(settings: NotifierSettings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else OutboxMailer(settings.outbox())
