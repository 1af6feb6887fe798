"""Secrets at rest (webhook signing secrets, PagerDuty routing keys): sealed with Fernet.

The stored form is ``fernet:`` + a Fernet token, so a sealed value is never mistaken for a clear
one. Keys come from ``BACKSTOP_SECRET_KEYS`` (comma-separated): the first seals, every one opens.
Rotation: put a new key first, restart, run ``backstop secrets rotate``, then drop the old key.

Without the variable, a key file in the data directory is used, and created (0600) when the
database is the embedded one beside it. Services that share a remote database refuse to start
without a key instead of each making up its own: what one sealed, the others could not open.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.config import BaseServiceSettings, EmbeddedSettings
from shared.private_files import private_dir

PREFIX = "fernet:"
KEY_FILE = "secret.key"


class SecretKeyMissing(RuntimeError):
    """No key to seal or open secrets with, and none may be made up here."""


class SecretUnreadable(ValueError):
    """A stored secret is not sealed, or was sealed with a key that is no longer configured."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> list[str]:
    return [k for k in re.split(r"[\s,]+", text) if k]


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyMissing("no secret key given")
        fernets = []
        for number, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except ValueError as exc:
                raise ValueError(f"secret key #{number} is not a Fernet key (32 url-safe "
                                 "base64-encoded bytes; `backstop secrets new-key` makes one)"
                                 ) from exc
        self._fernet = MultiFernet(fernets)
        self._first = keys[0]

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. signing the portal's cookies), derived from the
        first key with HKDF: never the sealing key itself, and the same on every replica that
        shares the keys."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"backstop:{purpose}".encode())
        return hkdf.derive(self._first.encode())

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, clear: str) -> str:
        return PREFIX + self._fernet.encrypt(clear.encode()).decode()

    def open(self, stored: str) -> str:
        if not self.is_sealed(stored):
            raise SecretUnreadable("stored secret is not sealed")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("stored secret was sealed with a key that is not "
                                   "configured (BACKSTOP_SECRET_KEYS)") from exc

    def rotate(self, stored: str) -> str:
        """The same secret sealed with the first key (or sealed at all, when it was clear)."""
        if not self.is_sealed(stored):
            return self.seal(stored)
        try:
            return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("stored secret was sealed with a key that is not "
                                   "configured (BACKSTOP_SECRET_KEYS)") from exc


def secret_box(settings: BaseServiceSettings) -> SecretBox:
    """The keys of this installation: from the environment, else from the data dir's key file."""
    if settings.secret_keys:
        return SecretBox(parse_keys(settings.secret_keys))
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        if settings.database_url and not isinstance(settings, EmbeddedSettings):
            raise SecretKeyMissing(
                "BACKSTOP_SECRET_KEYS is not set and there is no key file "
                f"{path}: with a shared database (BACKSTOP_DATABASE_URL) every service and "
                "the CLI need the same key; make one with `backstop secrets new-key`")
        _create_key_file(path)
    return SecretBox(parse_keys(path.read_text()))


def _create_key_file(path: Path) -> None:
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this installation made it first
        return
    with os.fdopen(fd, "w") as out:
        out.write(new_key() + "\n")
