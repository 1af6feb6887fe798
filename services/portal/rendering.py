"""Rendering a page: Jinja2 templates (``templates/``, autoescaped) with what every page needs —
the viewer, the brand, the CSRF token — added to the context.

A route returns ``await page(request, "job.html", {...})``. Templates extend ``base.html`` and
put a form's token in with ``{{ csrf_field() }}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape

from services.portal.csrf import FIELD, token_of
from services.portal.queries.days import DayCell
from services.portal.state import portal

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def when(value: datetime | None, empty: str = "—") -> str:
    """A moment as UTC, to the minute."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def size(value: int | float | None, empty: str = "—") -> str:
    """Bytes for people: 1.2 GB (decimal units, as storage is sold)."""
    if value is None:
        return empty
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(amount) < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} PB"  # pragma: no cover - the loop returns at TB


def duration(seconds: float | None, empty: str = "—") -> str:
    if seconds is None:
        return empty
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def day_strip(days: Sequence[DayCell]) -> Markup:
    """A job's strip of days, one cell a day with its text for screen readers. Built here, not
    in a template: the overview draws 1,500 cells, and their values (dates and a fixed set of
    words) need no escaping, which the template engine would do five times per cell."""
    cells = "".join(
        f'<li class="cell cell-{cell.outcome}" title="{cell.day}: {cell.outcome}">'
        f'<span class="visually-hidden">{cell.day}: {cell.outcome}</span></li>'
        for cell in days)
    return Markup(f'<ol class="strip" aria-label="Last {len(days)} days, oldest first">'
                  f"{cells}</ol>")


@pass_context
def csrf_field(context: Any) -> Markup:
    token = context.get("csrf_token", "")
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token)}">')


TEMPLATES.env.filters.update(when=when, size=size, duration=duration, strip=day_strip)
TEMPLATES.env.globals.update(csrf_field=csrf_field)


async def page(request: Request, template: str, context: dict[str, Any] | None = None, *,
               status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    state = portal(request)
    viewer = getattr(request.state, "viewer", None)
    brand = await state.branding.for_request(request.headers.get("host"), viewer)
    full = {"viewer": viewer, "brand": brand, "csrf_token": token_of(request),
            **(context or {})}
    return TEMPLATES.TemplateResponse(request, template, full, status_code=status,
                                      headers=headers)
