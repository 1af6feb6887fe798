"""White label: a reseller's users and customers see the reseller's name, logo and colour.

The name and logo are the notifier's branding (``backstop branding set``, table ``brands``); the
colour is the portal's (``portal_brands``). Before login, the host name the portal was reached
through picks the reseller (``BACKSTOP_PORTAL_RESELLER_HOSTS``), so a reseller's customers see
its branding on the login page too. Answers are cached for a few seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, col, select

from services.notifier.tables import BrandRow
from services.portal.tables import PortalBrand
from services.portal.users import Viewer
from shared.db import Database
from shared.tenancy import Reseller
from shared.ttlcache import TtlCache

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_COLOUR = "#1d4f7a"


class BrandError(ValueError):
    pass


@dataclass(frozen=True)
class Brand:
    name: str = "Backstop"
    logo_url: str | None = None
    colour: str = DEFAULT_COLOUR
    reseller_id: str | None = None

    @property
    def text_colour(self) -> str:
        return readable_on(self.colour)


DEFAULT = Brand()


def check_colour(colour: str) -> str:
    if not COLOUR.fullmatch(colour):
        raise BrandError(f"colour {colour!r} is not #rrggbb")
    return colour.lower()


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    return max(("#ffffff", "#111111"), key=lambda text: contrast(text, background))


def parse_hosts(text: str) -> dict[str, str]:
    """``host=reseller,host=reseller`` → {host: reseller id or name}."""
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        host, sep, reseller = pair.partition("=")
        if not sep or not host.strip() or not reseller.strip():
            raise BrandError(f"BACKSTOP_PORTAL_RESELLER_HOSTS: {pair.strip()!r} is not "
                             "host=reseller")
        mapping[host.strip().lower()] = reseller.strip()
    return mapping


def _safe_logo(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("https://", "http://", "/")) else None


def load(session: Session, reseller_id: str) -> Brand:
    row = session.get(BrandRow, reseller_id)
    own = session.get(PortalBrand, reseller_id)
    reseller = session.get(Reseller, reseller_id)
    name = (row.name if row is not None and row.name else None) or (
        reseller.name if reseller is not None else DEFAULT.name)
    return Brand(name=name, logo_url=_safe_logo(row.logo_url if row else None),
                 colour=(own.colour if own is not None and own.colour else DEFAULT.colour),
                 reseller_id=reseller_id)


def reseller_of_host(session: Session, reference: str) -> str | None:
    found = session.exec(select(Reseller).where(
        or_(col(Reseller.id) == reference, col(Reseller.name) == reference))).first()
    return found.id if found is not None else None


def set_colour(session: Session, reseller_id: str, colour: str | None) -> None:
    row = session.get(PortalBrand, reseller_id) or PortalBrand(reseller_id=reseller_id)
    row.colour = check_colour(colour) if colour else None
    session.add(row)


class Branding:
    def __init__(self, db: Database, hosts: str, ttl: float = 10.0) -> None:
        self._db = db
        self._hosts = parse_hosts(hosts)
        self._cache: TtlCache[str, Brand] = TtlCache(ttl, max_entries=1000)

    async def for_request(self, host: str | None, viewer: Viewer | None) -> Brand:
        """The viewer's reseller's brand; before login, the brand of the host name's reseller."""
        if viewer is not None:
            reseller_id = viewer.reseller_id
        else:
            reseller_id = self._hosts.get((host or "").split(":")[0].lower())
        if reseller_id is None:
            return DEFAULT
        fresh, brand = self._cache.peek(reseller_id)
        if fresh and brand is not None:
            return brand

        def work(session: Session) -> Brand:
            rid = reseller_of_host(session, reseller_id) if viewer is None else reseller_id
            return load(session, rid) if rid is not None else DEFAULT

        brand = await self._db.run(work)
        self._cache.put(reseller_id, brand)
        return brand
