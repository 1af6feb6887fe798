"""Plan reports: the executor's "backup report to people of interest", mailed by the notifier.

The executor publishes a :class:`~shared.events.PlanReported` when a plan with report recipients
ends (stream ``BACKSTOP_REPORTS``). This consumer mails it to each recipient under the
reseller's brand, through the notifier's mailer (SMTP, or the outbox folder). A report is not an
alert: no policy (silences, grouping, reminders) applies; alerts about the same run come on
their own path, from the evaluator.

Delivery is at least once: each recipient's mail has a Message-ID derived from the report and
the address (the outbox overwrites a resend, a mail client threads it), and the report is
claimed (``processed_events``) once every recipient's mail went out. A send that fails is
retried by the bus consumer's back-off, then dead-lettered.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

from sqlmodel import Session, col, select

from services.notifier.channels.emails import Brand, reseller_brand, template
from services.notifier.channels.headers import address, header_text
from services.notifier.channels.mail import Mailer
from services.notifier.errors import DeliveryError
from services.notifier.tables import BrandRow
from shared.db import Database
from shared.events import Event, PlanReported
from shared.processed import ProcessedEvent, claim_events
from shared.streams import REPORTS, ConsumerSpec
from shared.tenancy import AccountNotFound, AccountPath, lookup_path

CONSUMER = "notifier-reports"
SPEC = ConsumerSpec(stream=REPORTS.name, durable=CONSUMER,
                    filter_subjects=[PlanReported.subject_filter()])


def render_report(report: PlanReported, names: AccountPath, to: str, brand: Brand) -> EmailMessage:
    failed = report.failed or report.status in ("failed", "stopped", "interrupted")
    subject = (f"[{'FAILED' if failed else 'OK'}] Backup plan {report.plan}: {report.status} "
               f"({report.succeeded} ok, {report.failed} failed, {report.skipped} skipped)")
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = address(brand.sender, brand.name)
    message["To"] = address(to)
    message["Date"] = formatdate(localtime=False)
    key = f"report/{report.event_id}/{to}"
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@backstop>"
    message["X-Backstop-Plan-Execution"] = header_text(report.execution_id)
    context = {"report": report, "names": names, "brand": brand}
    message.set_content(template("plan_report.txt.j2").render(context))
    message.add_alternative(template("plan_report.html.j2").render(context),
                            subtype="html")
    return message


class PlanReports:
    def __init__(self, db: Database, mailer: Mailer, default_brand: Brand) -> None:
        self.db = db
        self.mailer = mailer
        self.default_brand = default_brand

    def _facts(self, session: Session, report: PlanReported
               ) -> tuple[bool, AccountPath | None, Brand]:
        done = session.exec(select(ProcessedEvent.event_id).where(
            col(ProcessedEvent.consumer) == CONSUMER,
            col(ProcessedEvent.event_id) == report.event_id)).first() is not None
        try:
            names: AccountPath | None = lookup_path(session, report.tenant.account)
        except AccountNotFound:
            names = None
        brand = reseller_brand(session.get(BrandRow, report.tenant.reseller), self.default_brand)
        return done, names, brand

    async def handle(self, event: Event) -> None:
        if not isinstance(event, PlanReported):
            return
        done, names, brand = await self.db.run(lambda s: self._facts(s, event))
        if done:
            return
        if names is None:
            names = AccountPath(event.tenant.reseller, event.tenant.reseller,
                                event.tenant.customer, event.tenant.customer,
                                event.tenant.account, event.tenant.account)
        for to in dict.fromkeys(event.recipients):
            try:
                await self.mailer.send(render_report(event, names, to, brand))
            except DeliveryError as exc:
                if not exc.retryable:  # this address refused for good: the others still get it
                    continue
                raise
        await self.db.run(lambda s: claim_events(s, CONSUMER, [event.event_id]))
