"""What every request handler of the portal reaches through ``request.app.state.portal``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from services.portal.branding import Branding
from services.portal.csrf import CsrfTokens
from services.portal.sessions import Sessions
from shared.bus import Bus
from shared.config import PortalSettings
from shared.db import Database

if TYPE_CHECKING:
    from services.portal.live import AlertFeed
    from services.portal.login import Authenticator


@dataclass
class PortalState:
    settings: PortalSettings
    db: Database
    sessions: Sessions
    csrf: CsrfTokens
    branding: Branding
    authenticator: Authenticator
    feed: AlertFeed
    # The service's bus (None in tests without NATS): Run now publishes plan triggers on it.
    bus: Bus | None = None
    # Set when the process stops: long-lived responses (the live stream) end then.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    extras: dict[str, object] = field(default_factory=dict)


def portal(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def database(request: Request) -> Database:
    """A dependency: the portal's database (``db: Database = Depends(database)``)."""
    return portal(request).db
