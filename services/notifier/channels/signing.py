"""Standard Webhooks signing (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
# Standard Webhooks: secrets are 24 to 64 random bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class WeakSecret(ValueError):
    """A signing secret that is not 24 to 64 bytes of base64 after ``whsec_``."""


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, one per endpoint."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> None:
    rule = (f"a signing secret is {PREFIX} + base64 of {MIN_SECRET_BYTES} to "
            f"{MAX_SECRET_BYTES} random bytes (the Standard Webhooks minimum is "
            f"{MIN_SECRET_BYTES} bytes); leave it out to have one generated")
    try:
        raw = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except ValueError as exc:
        raise WeakSecret(f"not base64: {rule}") from exc
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise WeakSecret(f"{len(raw)} bytes: {rule}")


def message_id(delivery_key: str) -> str:
    # The same on every retry of one delivery: receivers use it as their idempotency key.
    return "msg_" + hashlib.sha256(delivery_key.encode()).hexdigest()[:32]


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body),
    }
