"""``/settings``: the webhooks, contacts and branding a user may see, with forms for those their
role lets them change (reseller-wide ones and branding: reseller staff and operators; a
customer's webhooks and contacts: also its users). Read-only users see no forms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.notifier.channels.formats import FORMATS
from services.notifier.channels.targets import TargetPolicy
from services.portal.access import current_viewer, editor
from services.portal.actions import notify_settings
from services.portal.rendering import page
from services.portal.rights import Editor, Invalid
from services.portal.state import database, portal
from services.portal.users import Viewer
from shared.config import NotifierSettings
from shared.db import Database
from shared.secretbox import SecretKeyMissing, secret_box

router = APIRouter()


def _read(session: Session, viewer: Viewer) -> dict[str, Any]:
    resellers = notify_settings.resellers(session, viewer.scope)
    return {
        "webhooks": notify_settings.webhooks(session, viewer.scope),
        "contacts": {(c.reseller_id, c.customer_id): c.contacts
                     for c in notify_settings.contacts(session, viewer.scope)},
        "customers": notify_settings.customers(session, viewer.scope),
        "resellers": resellers,
        "brands": [notify_settings.brand(session, viewer.scope, r.id) for r in resellers],
    }


async def _page(request: Request, viewer: Viewer, db: Database,
                **extra: object) -> Response:
    found = await db.run(lambda s: _read(s, viewer))
    return await page(request, "settings.html", {"title": "Settings", "formats": FORMATS,
                                                 **found, **extra})


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, viewer: Viewer = Depends(current_viewer),
                        db: Database = Depends(database)) -> Response:
    return await _page(request, viewer, db)


def _customer(value: str) -> str | None:
    return value or None


@router.post("/settings/webhooks", response_class=HTMLResponse)
async def add_webhook(request: Request, reseller_id: str = Form(..., max_length=32),
                      customer_id: str = Form("", max_length=32),
                      url: str = Form(..., max_length=2000),
                      fmt: str = Form("backstop", alias="format", max_length=16),
                      secret: str = Form("", max_length=200),
                      viewer: Viewer = Depends(editor),
                      db: Database = Depends(database)) -> Response:
    notifier = NotifierSettings()
    try:
        keys = secret_box(portal(request).settings)
        targets = TargetPolicy.parse(notifier.webhook_allow_networks)
    except (SecretKeyMissing, ValueError) as exc:
        raise Invalid(str(exc)) from exc
    new = await db.run(lambda s: notify_settings.add_webhook(
        s, Editor.of(viewer), reseller_id=reseller_id, customer_id=_customer(customer_id),
        url=url, fmt=fmt, secret=secret or None, keys=keys, targets=targets))
    # The generated signing secret is shown this once, on this answer (never stored in clear).
    return await _page(request, viewer, db, added=new.endpoint.url,
                       generated_secret=new.generated_secret)


@router.post("/settings/webhooks/{endpoint_id}/remove")
async def remove_webhook(endpoint_id: str = Path(..., max_length=32),
                         viewer: Viewer = Depends(editor),
                         db: Database = Depends(database)) -> Response:
    await db.run(lambda s: notify_settings.remove_webhook(s, Editor.of(viewer), endpoint_id))
    return RedirectResponse("/settings?done=removed", status_code=303)


@router.post("/settings/contacts")
async def set_contacts(reseller_id: str = Form(..., max_length=32),
                       customer_id: str = Form("", max_length=32),
                       emails: str = Form("", max_length=5000),
                       viewer: Viewer = Depends(editor),
                       db: Database = Depends(database)) -> Response:
    addresses = [e for e in emails.replace(",", "\n").splitlines() if e.strip()]
    await db.run(lambda s: notify_settings.set_contacts(
        s, Editor.of(viewer), reseller_id=reseller_id, customer_id=_customer(customer_id),
        emails=addresses))
    return RedirectResponse("/settings?done=saved", status_code=303)


@router.post("/settings/branding")
async def set_branding(reseller_id: str = Form(..., max_length=32),
                       name: str = Form("", max_length=200), sender: str = Form("", max_length=300),
                       logo_url: str = Form("", max_length=2000),
                       footer: str = Form("", max_length=2000),
                       viewer: Viewer = Depends(editor),
                       db: Database = Depends(database)) -> Response:
    await db.run(lambda s: notify_settings.set_brand(
        s, Editor.of(viewer), reseller_id, name=name, sender=sender, logo_url=logo_url,
        footer=footer))
    return RedirectResponse("/settings?done=saved", status_code=303)
