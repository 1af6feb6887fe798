"""Secrets at rest: sealed with Fernet, opened with any configured key, rotated to the first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.config import BaseServiceSettings, EmbeddedSettings
from shared.secretbox import (
    KEY_FILE,
    SecretBox,
    SecretKeyMissing,
    SecretUnreadable,
    new_key,
    secret_box,
)

SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LW9mLTMyLWJ5dGVzIQ=="


def test_sealed_value_is_marked_and_not_the_secret() -> None:
    box = SecretBox([new_key()])
    sealed = box.seal(SECRET)
    assert sealed.startswith("fernet:") and SECRET not in sealed
    assert box.seal(SECRET) != sealed  # a fresh IV each time
    assert box.open(sealed) == SECRET
    with pytest.raises(SecretUnreadable, match="not sealed"):
        box.open(SECRET)
    with pytest.raises(SecretUnreadable, match="BACKSTOP_SECRET_KEYS"):
        SecretBox([new_key()]).open(sealed)
    with pytest.raises(ValueError, match="not a Fernet key"):
        SecretBox(["too-short"])


def test_rotation_keeps_old_values_readable_then_reseals() -> None:
    old, new = new_key(), new_key()
    sealed_old = SecretBox([old]).seal(SECRET)
    both = SecretBox([new, old])
    assert both.open(sealed_old) == SECRET
    rotated = both.rotate(sealed_old)
    assert SecretBox([new]).open(rotated) == SECRET
    with pytest.raises(SecretUnreadable):
        SecretBox([old]).open(rotated)
    assert SecretBox([new]).open(both.rotate(SECRET)) == SECRET  # clear ones get sealed


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    monkeypatch.setenv("BACKSTOP_SECRET_KEYS", f"{first}, {second}")
    box = secret_box(BaseServiceSettings(data_dir=tmp_path))
    assert SecretBox([first]).open(box.seal(SECRET)) == SECRET
    assert box.open(SecretBox([second]).seal(SECRET)) == SECRET
    assert not (tmp_path / KEY_FILE).exists()


def test_embedded_database_gets_a_private_key_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    box = secret_box(BaseServiceSettings(data_dir=data_dir, secret_keys=""))
    key_file = data_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    again = secret_box(BaseServiceSettings(data_dir=data_dir, secret_keys=""))
    assert again.open(box.seal(SECRET)) == SECRET
    # backstop up on a database of its own choosing still keeps the key beside its data.
    embedded = EmbeddedSettings(data_dir=tmp_path / "up", database_url="postgresql://x/y",
                                secret_keys="")
    secret_box(embedded)
    assert (tmp_path / "up" / KEY_FILE).exists()


def test_shared_database_without_a_key_refuses(tmp_path: Path) -> None:
    settings = BaseServiceSettings(data_dir=tmp_path, database_url="postgresql://db/backstop",
                                   secret_keys="")
    with pytest.raises(SecretKeyMissing, match="BACKSTOP_SECRET_KEYS is not set"):
        secret_box(settings)
    assert not (tmp_path / KEY_FILE).exists()
    (tmp_path / KEY_FILE).write_text(new_key() + "\n")  # a data dir shared on purpose
    secret_box(settings)
