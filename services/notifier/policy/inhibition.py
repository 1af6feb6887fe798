"""Inhibition: an account-level alert that makes its jobs' alerts redundant mutes them.

=================  =================================================================
account-level       job-level kinds it mutes on the same account
=================  =================================================================
``never_used``      ``missed_run``, ``no_data``, ``failed_run``, ``run_too_long`` —
                    nothing was ever set up, every job symptom follows from that.
``quota``           ``failed_run``, ``missed_run``, ``no_data`` — a full store makes
                    runs fail or not happen; fixing the quota fixes them.
=================  =================================================================

``outdated_client`` is never muted: it needs its own action. Only alerts with a job are muted,
and only while the account-level alert fires; a muted alert that still fires afterwards is
reported by its next reminder.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from services.notifier.tables import AlertNotifyState
from shared.events import AlertChanged

INHIBITS: dict[str, frozenset[str]] = {
    "never_used": frozenset({"missed_run", "no_data", "failed_run", "run_too_long"}),
    "quota": frozenset({"failed_run", "missed_run", "no_data"}),
}


def inhibited_by(alert: AlertChanged, firing_account_kinds: set[str]) -> str | None:
    """The account-level kind muting ``alert``, if any."""
    if alert.job is None:
        return None
    for source in sorted(firing_account_kinds):
        if alert.kind in INHIBITS.get(source, frozenset()):
            return source
    return None


def firing_account_kinds(session: Session, account_id: str) -> set[str]:
    rows = session.exec(
        select(AlertNotifyState.kind).where(
            AlertNotifyState.account_id == account_id, AlertNotifyState.state == "firing",
            col(AlertNotifyState.job).is_(None), col(AlertNotifyState.kind).in_(INHIBITS),
        )
    ).all()
    return set(rows)
