"""Password hashes: argon2id (memory-hard) from argon2-cffi with its recommended parameters.

A hash made with older parameters is re-made at the next successful login
(:func:`needs_rehash`). Verifying against :data:`DUMMY_HASH` when the address is unknown keeps
a login's duration from telling which addresses have accounts.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; this keeps one request's work bounded

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("backstop: no such user")


class WeakPassword(ValueError):
    """A password a new hash is refused for."""


def check_new(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_new(password))


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; None (no local password) never matches, but
    costs as much time as a real check."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored or DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
