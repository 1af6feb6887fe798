"""Account credentials: random, shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of randomness, so a fast digest is enough (no password stretching needed);
lookups are by digest, and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "bst_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_ping_key() -> str:
    # Healthchecks-style keys are 22 URL-safe characters; ours have the same shape.
    return secrets.token_urlsafe(16)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
