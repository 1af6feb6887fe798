"""Quota: storage used above the account's threshold percent fires; it resolves only below the
threshold minus a hysteresis, so usage hovering at the threshold does not flap."""

from __future__ import annotations

from datetime import datetime

from services.evaluator.facts import AccountFacts, Transition, fire, resolve
from services.evaluator.policies import PolicyBook

KIND = "quota"


def on_usage(
    account: AccountFacts, bytes_used: int, quota_bytes: int | None, at: datetime,
    policies: PolicyBook,
) -> Transition | None:
    quota = quota_bytes if quota_bytes is not None else account.quota_bytes
    if quota_bytes is not None:
        account.quota_bytes = quota_bytes
    if not quota or quota <= 0:
        return None
    percent = 100.0 * bytes_used / quota
    threshold = policies.as_float("quota_percent", account.tenant)
    hysteresis = policies.as_float("quota_hysteresis_percent", account.tenant)
    details = {"bytes_used": bytes_used, "quota_bytes": quota, "percent": round(percent, 2),
               "threshold_percent": threshold}
    if percent >= threshold:
        return fire(
            account, KIND, at=at, severity="critical" if percent >= 100 else "warning",
            summary=f"Storage at {percent:.1f}% of the quota (threshold {threshold:g}%)",
            details=details,
        )
    if percent < threshold - hysteresis:
        return resolve(account, KIND, at=at, details=details,
                       summary=f"Storage back to {percent:.1f}% of the quota")
    return None
