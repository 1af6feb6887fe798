"""Outdated clients: a reported version older than the minimum configured for that client name.

Versions compare as versions (PEP 440 via ``packaging``): 2.10 is newer than 2.9.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from packaging.version import InvalidVersion, Version

from services.evaluator.facts import AccountFacts, Transition, fire, label, resolve
from services.evaluator.policies import PolicyBook

KIND = "outdated_client"


@lru_cache(maxsize=1024)
def _version(raw: str) -> Version | None:
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def on_client(
    account: AccountFacts, client_name: str, client_version: str, at: datetime,
    policies: PolicyBook,
) -> Transition | None:
    minimum = policies.min_versions.get(client_name)
    if minimum is None and label(KIND, client_name) not in account.firing:
        return None  # the common case: nothing to compare with, nothing to resolve
    reported = _version(client_version)
    if reported is None:
        return None  # cannot be judged; not evidence of an old client
    details = {"client_name": client_name, "client_version": client_version,
               "minimum_version": str(minimum) if minimum else None}
    if minimum is not None and reported < minimum:
        return fire(
            account, KIND, key=client_name, at=at, severity="warning", details=details,
            summary=f"{client_name} {client_version} is older than the minimum {minimum}",
        )
    return resolve(account, KIND, key=client_name, at=at, details=details,
                   summary=f"{client_name} is at {client_version}")
