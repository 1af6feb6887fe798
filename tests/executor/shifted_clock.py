"""A clock shifted from the real one, and a tenant, for the executor's scheduling tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import Tenant, utcnow

TENANT = Tenant(reseller="r1", customer="c1", account="a1")


class ShiftedClock:
    """The real clock moved by a fixed offset: time passes, but a minute boundary (a cron
    tick) can be made to come in a second instead of in up to a minute."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    @classmethod
    def before_next_minute(cls, seconds: float) -> ShiftedClock:
        now = utcnow()
        boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        return cls(boundary - timedelta(seconds=seconds) - now)

    def now(self) -> datetime:
        return utcnow() + self.offset
