"""Helpers the tests share (fixtures live in conftest.py): accounts, tenants, polling, and
an SMTP sink that keeps what it receives."""

from __future__ import annotations

import asyncio
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import Envelope

from shared.db import Database
from shared.events import Tenant
from shared.tenancy import Account, Customer, IssuedAccount, Reseller, create_account


def make_account(
    db: Database, *, reseller: str = "Reseller", customer: str = "Customer",
    name: str | None = None, contacts: list[str] | None = None, quota_bytes: int | None = None,
) -> IssuedAccount:
    with db.session() as session:
        return create_account(
            session, reseller=reseller, customer=customer, name=name or uuid.uuid4().hex[:8],
            contacts=contacts if contacts is not None else ["ops@example.com"],
            quota_bytes=quota_bytes,
        )


def rename_unchecked(
    db: Database, issued: IssuedAccount, *, reseller: str | None = None,
    customer: str | None = None, account: str | None = None,
) -> None:
    """Give the tenant names no check allows today: rows stored before names were checked, or
    written by other tools, may hold anything (control characters, say)."""
    with db.session() as session:
        for model, row_id, name in ((Reseller, issued.reseller.id, reseller),
                                    (Customer, issued.customer.id, customer),
                                    (Account, issued.account.id, account)):
            row = session.get(model, row_id)
            if row is not None and name is not None:
                row.name = name


def tenant_of(issued: IssuedAccount) -> Tenant:
    return issued.account.tenant()


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives.

    ``reject_with`` makes it answer every DATA with that status line (e.g. ``"451 try later"``),
    ``refuse_rcpt_with`` every RCPT TO (e.g. ``"450 greylisted"``). ``hold`` keeps every DATA
    waiting that many seconds (deliveries in flight; ``held`` counts them) and then defers it.
    ``raw`` keeps the bytes as they came over the wire, ``mail_options`` the MAIL FROM parameters
    (``SMTPUTF8``, ``BODY=8BITMIME``).
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.mail_options: list[list[str]] = []  # each message's MAIL FROM parameters
        self.reject_with: str | None = None
        self.refuse_rcpt_with: str | None = None
        self.hold = 0.0
        self.held = 0

    async def handle_RCPT(self, server: object, session: object, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.refuse_rcpt_with:
            return self.refuse_rcpt_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        if self.hold:
            self.held += 1
            await asyncio.sleep(self.hold)
            return "451 4.3.0 held"
        if self.reject_with:
            return self.reject_with
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        self.raw.append(content)
        self.mail_options.append(list(envelope.mail_options))
        self.messages.append(message)
        return "250 OK"
