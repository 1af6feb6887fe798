"""Silent accounts: never used (no run ever, N days after creation) and no data (successful runs
that transferred zero bytes for N days)."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.evaluator.facts import AccountFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook
from shared.events import RunReported

NEVER_USED = "never_used"
NO_DATA = "no_data"


def never_used_deadline(account: AccountFacts, policies: PolicyBook) -> datetime | None:
    if account.first_run_at is not None or NEVER_USED in account.firing:
        return None
    return account.created_at + timedelta(days=policies.as_float("never_used_days", account.tenant))


def no_data_deadline(account: AccountFacts, policies: PolicyBook) -> datetime | None:
    if account.zero_bytes_since is None or NO_DATA in account.firing:
        return None
    days = policies.as_float("no_data_days", account.tenant)
    return account.zero_bytes_since + timedelta(days=days)


def deadline(account: AccountFacts, policies: PolicyBook) -> datetime | None:
    found = [d for d in (never_used_deadline(account, policies),
                         no_data_deadline(account, policies)) if d is not None]
    return min(found) if found else None


def on_run(account: AccountFacts, run: RunReported, at: datetime) -> list[Transition]:
    out: list[Transition] = []
    if account.first_run_at is None or at < account.first_run_at:
        account.first_run_at = at
    used = resolve(account, NEVER_USED, at=at, summary="The account reported its first run")
    if used:
        out.append(used)
    if run.status not in ("success", "warning") or run.bytes_transferred is None:
        return out  # only finished runs that say how much they moved tell about data
    if run.bytes_transferred > 0:
        account.zero_bytes_since = None
        back = resolve(account, NO_DATA, at=at,
                       summary=f"Backups transfer data again ({run.bytes_transferred} bytes)")
        if back:
            out.append(back)
    elif account.zero_bytes_since is None:
        account.zero_bytes_since = at
    return out


def on_deadline(account: AccountFacts, now: datetime, policies: PolicyBook) -> list[Transition]:
    out: list[Transition] = []
    unused = never_used_deadline(account, policies)
    if unused is not None and unused <= now:
        days = policies.as_float("never_used_days", account.tenant)
        changed = fire(account, NEVER_USED, at=now, severity="warning",
                       summary=f"No backup run reported in the {days:g} days since the account "
                               "was created",
                       details={"created_at": account.created_at.isoformat(), "days": days})
        if changed:
            out.append(changed)
    empty = no_data_deadline(account, policies)
    if empty is not None and empty <= now:
        days = policies.as_float("no_data_days", account.tenant)
        assert account.zero_bytes_since is not None
        changed = fire(account, NO_DATA, at=now, severity="error",
                       summary=f"Backups have transferred no data for {days:g} days",
                       details={"zero_bytes_since": account.zero_bytes_since.isoformat(),
                                "days": days})
        if changed:
            out.append(changed)
    return out
