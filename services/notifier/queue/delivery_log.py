"""The log line each delivery outcome leaves: sent, retry, dead, or suppressed before planning.

Ids and the facts an operator needs to follow one alert through (``fingerprint``, tenant ids,
``notification_id``), never a secret nor a person's address: a webhook is named by its endpoint
id and host (its URL may hold a token), an e-mail by its recipient's domain (the address is in
``backstop notifications``, under the notification id). docs/operations.md lists the fields.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from services.notifier.channels.webhooks import endpoint_host
from services.notifier.errors import Outcome
from services.notifier.tables import Notification, NotifyTransition, WebhookEndpoint
from shared.text import one_line

# The name operators filter on (docs/operations.md), kept when the module moved.
log = logging.getLogger("services.notifier.delivery_log")

ERROR_CHARS = 300
# An address in an error (an SMTP server quoting the recipient): the domain stays.
_ADDRESS = re.compile(r"[^\s<>\"'(),;:@]+@(?=[^\s<>\"'(),;:@]+)")


def log_delivery(row: Notification, outcome: Outcome, status: str, attempts: int,
                 next_attempt_at: datetime | None, duration_ms: float,
                 endpoint: WebhookEndpoint | None) -> None:
    """One line for one notification's attempt; a dead letter (nobody told) is a warning."""
    fields: dict[str, Any] = {
        "event": "delivery", "outcome": status, "channel": row.channel,
        "notification_id": row.id, "fingerprint": row.fingerprint, "sequence": row.sequence,
        "transition": row.transition, "reseller_id": row.reseller_id,
        "customer_id": row.customer_id, "account_id": row.account_id, **_target(row, endpoint),
        "attempts": attempts, "duration_ms": round(duration_ms, 1),
    }
    if outcome.http_status is not None:
        fields["http_status"] = outcome.http_status
    if status != "sent":
        fields["reason"] = outcome.reason
        fields["error"] = _error(outcome.error)
    if status == "retry" and next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at.isoformat()
    log.log(logging.WARNING if status == "dead" else logging.INFO, "delivery %s", status,
            extra=fields)


def log_suppressed(transition: NotifyTransition, reason: str) -> None:
    """A transition nobody is told of (silenced, inhibited, …): one line, no notification."""
    log.info("delivery suppressed", extra={
        "event": "delivery", "outcome": "suppressed", "reason": reason,
        "fingerprint": transition.fingerprint, "sequence": transition.sequence,
        "transition": transition.transition, "reseller_id": transition.reseller_id,
        "customer_id": transition.customer_id, "account_id": transition.account_id,
    })


def _target(row: Notification, endpoint: WebhookEndpoint | None) -> dict[str, str | None]:
    if row.channel == "email":
        return {"recipient_domain": row.target.rpartition("@")[2]}
    return {"endpoint_id": row.target,
            "endpoint_host": endpoint_host(endpoint) if endpoint is not None else None}


def _error(error: str | None) -> str | None:
    """The stored error, on one line, capped, with addresses cut to their domain (URLs are
    cut by the log formatter)."""
    return None if error is None else one_line(_ADDRESS.sub("…@", error), ERROR_CHARS)
