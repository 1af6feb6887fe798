"""Notifier fixtures: a real slapd with the Backstop schema, and a real HTTP webhook receiver."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from shared.natsd import free_port
from tests.notifier.receiver import Receiver, handler
from tests.notifier.slapd import Slapd

# --- slapd -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not os.path.exists("/usr/sbin/slapd"):
        if os.environ.get("CI"):
            pytest.fail("slapd is required under CI (apt-get install slapd)")
        pytest.skip("slapd is not installed (apt-get install slapd)")
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    server.seed_tree()
    yield server
    server.stop()


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd of one's own, for tests that stop and restart it."""
    server = Slapd(tmp_path / "slapd")
    server.start()
    server.seed_tree()
    yield server
    server.stop()


# --- webhook receiver --------------------------------------------------------------------------


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook")
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
