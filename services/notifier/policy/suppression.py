"""The policy: should a transition be notified at all? Pure, so every rule is a unit test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.notifier.policy.inhibition import inhibited_by
from services.notifier.policy.silences import covers
from services.notifier.tables import Silence
from shared.events import AlertChanged

SUPPRESSION_REASONS = ("silenced", "inhibited", "not_notified", "unknown_account")


@dataclass(frozen=True)
class Facts:
    """What the decision needs to know besides the alert."""

    now: datetime
    silences: list[Silence] = field(default_factory=list)
    firing_account_kinds: set[str] = field(default_factory=set)
    # Was the firing this resolve ends told to anyone?
    firing_notified: bool = True


def suppression(alert: AlertChanged, transition: str, facts: Facts) -> str | None:
    """The reason not to notify, or None to notify."""
    if transition == "resolved":
        # Nobody heard of the problem, so nobody needs to hear it is gone. A resolve of one
        # that was told goes out even during a silence: tickets must close.
        return None if facts.firing_notified else "not_notified"
    if any(covers(s, alert.tenant, facts.now) for s in facts.silences):
        return "silenced"
    if inhibited_by(alert, facts.firing_account_kinds):
        return "inhibited"
    return None
