"""The embedded nats-server: only Backstop can talk to it, and only one server uses a store."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from shared.bus import Bus, BusUnavailable
from shared.natsd import EmbeddedNats, StoreInUse
from tests.shared.test_bus import run_event
from tests.support import eventually


async def test_clients_without_the_credentials_are_refused(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        # What any local process could do before: connect and publish a fake report.
        with pytest.raises((NatsError, OSError)):
            intruder = await nats.connect(server.address, allow_reconnect=False,
                                          connect_timeout=2, max_reconnect_attempts=0)
            await intruder.close()
        bus = Bus(server.url)
        await bus.connect()
        assert bus.connected
        await bus.close()
    finally:
        server.stop()


def test_the_secret_is_in_private_files_not_on_the_command_line(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        assert server.process is not None
        password = (tmp_path / "nats" / "client-password").read_text().strip()
        assert len(password) >= 32
        command_line = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert password.encode() not in command_line
        for name in ("client-password", "nats-server.conf"):
            assert stat.S_IMODE((tmp_path / "nats" / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE((tmp_path / "nats").stat().st_mode) == 0o700
        assert password not in server.address
    finally:
        server.stop()


def test_the_password_is_kept_across_restarts(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "nats")
    first.start()
    first.stop()
    second = EmbeddedNats(tmp_path / "nats")
    second.start()
    second.stop()
    assert first.url.split("@")[0] == second.url.split("@")[0]


def test_a_store_is_used_by_one_server_at_a_time(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "nats")
    first.start()
    try:
        assert first.process is not None
        with pytest.raises(StoreInUse, match=f"nats-server pid {first.process.pid}"):
            EmbeddedNats(tmp_path / "nats").start()
    finally:
        first.stop()
    again = EmbeddedNats(tmp_path / "nats")  # released by a stop
    again.start()
    again.stop()


async def test_a_supervised_server_that_dies_is_restarted(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    stop = asyncio.Event()
    supervisor = asyncio.create_task(server.supervise(stop, poll_seconds=0.05))
    bus = Bus(server.url)
    await bus.connect()
    try:
        assert server.process is not None
        first = server.process.pid
        server.kill()

        async def published() -> bool:
            try:
                await bus.publish(run_event("supervised"), timeout=0.5)
            except BusUnavailable:
                return False
            return True

        await eventually(published, timeout=15)
        assert server.process.pid != first
    finally:
        stop.set()
        await supervisor
        await bus.close()
        server.stop()

