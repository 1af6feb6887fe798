"""Alert e-mails: Jinja2 templates, plain text with an HTML alternative (autoescaped).

Templates are looked up most specific first — ``<kind>.<transition>``, ``<transition>``,
``alert`` — so one kind's firing mail can say more without copying every template. Each
reseller's brand (name, logo, sender, footer) makes MSPs send under their own name.

Header values built from data go through :mod:`headers` (client text can hold line breaks and
control characters). :func:`build` turns any failure into :class:`UnbuildableMessage`: the same data
fails the same way on every retry.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from services.notifier.channels.headers import address, header_text
from services.notifier.errors import UnbuildableMessage
from services.notifier.tables import BrandRow
from shared.events import AlertChanged
from shared.tenancy import AccountPath

_env = Environment(
    loader=PackageLoader("services.notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no stat() per mail
)

KIND_TITLES = {
    "failed_run": "Failed run",
    "missed_run": "Missed run",
    "run_too_long": "Run too long",
    "quota": "Quota over threshold",
    "outdated_client": "Outdated client",
    "never_used": "Account never used",
    "no_data": "No data sent",
}
PREFIXES = {"firing": "PROBLEM", "resolved": "RESOLVED", "reminder": "REMINDER"}
SUMMARY_LIMIT = 150  # of the subject; the body has the whole summary


@dataclass(frozen=True)
class Brand:
    name: str = "Backstop"
    sender: str = "backstop@localhost"
    footer: str = "Sent by Backstop backup monitoring."
    logo_url: str | None = None


def reseller_brand(row: BrandRow | None, default: Brand) -> Brand:
    """A reseller's brand: what its row sets, ``default`` for what it leaves empty."""
    if row is None:
        return default
    return Brand(name=row.name or default.name, sender=row.sender or default.sender,
                 footer=row.footer or default.footer, logo_url=row.logo_url or default.logo_url)


@dataclass(frozen=True)
class Item:
    """One alert in a mail: the alert, which transition, and whose account it is."""

    alert: AlertChanged
    transition: str
    tenant: AccountPath
    link: str


def reference(alert: AlertChanged) -> str:
    # Ticket systems thread follow-ups on a reference in the subject: one per problem.
    return f"BS-{alert.fingerprint[:10]}"


def template(name: str) -> Template:
    """A template of the notifier's folder (other mails than alerts: plan reports)."""
    return _env.get_template(name)


@functools.cache
def _template(kind: str, transition: str, ext: str) -> str:
    names = [f"{kind}.{transition}.{ext}.j2", f"{transition}.{ext}.j2", f"alert.{ext}.j2"]
    return _env.select_template(names).name or names[-1]


def _context(item: Item, brand: Brand) -> dict[str, object]:
    return {
        "alert": item.alert, "names": item.tenant, "brand": brand, "link": item.link,
        "transition": item.transition, "reference": reference(item.alert),
        "kind_title": KIND_TITLES.get(item.alert.kind, item.alert.kind),
    }


def _message(subject: str, to: str, brand: Brand, key: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = address(brand.sender, brand.name)
    message["To"] = address(to)
    message["Date"] = formatdate(localtime=False)
    # Deterministic per delivery: a resend is recognisable as the same message.
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@backstop>"
    return message


def render(item: Item, to: str, brand: Brand, key: str) -> EmailMessage:
    alert = item.alert
    summary = header_text(alert.summary, SUMMARY_LIMIT)
    subject = f"[{PREFIXES[item.transition]}] {summary} [{reference(alert)}]"
    message = _message(subject, to, brand, key)
    message["X-Backstop-Alert"] = header_text(
        f"{alert.fingerprint}/{alert.sequence}/{item.transition}")
    context = _context(item, brand)
    message.set_content(_env.get_template(_template(alert.kind, item.transition, "txt"))
                        .render(context))
    message.add_alternative(
        _env.get_template(_template(alert.kind, item.transition, "html")).render(context),
        subtype="html",
    )
    return message


def render_digest(items: list[Item], to: str, brand: Brand, key: str) -> EmailMessage:
    """Several alerts of one customer in one mail (grouping)."""
    if len(items) == 1:
        return render(items[0], to, brand, key)
    customer = items[0].tenant.customer
    message = _message(f"[PROBLEM] {len(items)} backup alerts for {customer}", to, brand, key)
    message["X-Backstop-Alert"] = header_text(" ".join(
        f"{i.alert.fingerprint}/{i.alert.sequence}/{i.transition}" for i in items
    ), limit=10_000)
    context = {
        "items": [_context(i, brand) for i in items], "brand": brand, "customer": customer,
    }
    message.set_content(_env.get_template("digest.txt.j2").render(context))
    message.add_alternative(_env.get_template("digest.html.j2").render(context), subtype="html")
    return message


def build(items: list[Item], to: str, brand: Brand, key: str) -> EmailMessage:
    """The e-mail of one delivery; raises :class:`UnbuildableMessage` when there cannot be one."""
    try:
        return render_digest(items, to, brand, key)
    except Exception as exc:
        raise UnbuildableMessage(f"cannot be built: {exc!r}") from exc
