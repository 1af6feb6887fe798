"""Fixtures of the executor's tests: a real sshd with its own keys (the remote target)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.executor.support import Sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """An sshd on a free port of 127.0.0.1 that lets the current user in with its own key."""
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()
