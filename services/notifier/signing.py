"""Standard Webhooks signing (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from standardwebhooks import Webhook


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, one per endpoint."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(delivery_key: str) -> str:
    # The same on every retry of one delivery: receivers use it as their idempotency key.
    return "msg_" + hashlib.sha256(delivery_key.encode()).hexdigest()[:32]


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body),
    }
