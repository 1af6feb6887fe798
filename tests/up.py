"""``backstop up`` as an operator runs it, as a child process: its endpoints, its log, its CLI
on the same data directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.natsd import free_port

BACKSTOP = [sys.executable, "-m", "services.cli"]
ROOT = Path(__file__).resolve().parents[1]


class Up:
    """``backstop up`` as a child process in its own session (as a terminal would start it)."""

    def __init__(self, data_dir: Path, cwd: Path | None = None) -> None:
        """``cwd``: where it runs (a checkout, for the relative paths of the README's demo)."""
        self.data_dir = data_dir
        self.cwd = cwd
        self.port = free_port()
        self.ops_port = free_port()
        self.portal_port = free_port()
        self.env = {**os.environ, "BACKSTOP_DATA_DIR": str(data_dir),
                    "BACKSTOP_OPS_PORT": str(self.ops_port), "BACKSTOP_LOG_FORMAT": "json"}
        for name in ("BACKSTOP_NATS_URL", "BACKSTOP_DATABASE_URL", "BACKSTOP_OPS_HOST"):
            self.env.pop(name, None)
        if cwd is not None:  # Backstop's code is found where it is, wherever it runs
            self.env["PYTHONPATH"] = str(ROOT)
        self.log = data_dir / f"up-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def cli(self, *args: str) -> str:
        return subprocess.run([*BACKSTOP, *args], env=self.env, check=True, capture_output=True,
                              text=True, cwd=self.cwd).stdout

    def spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*BACKSTOP, "up", "--ingest-port", str(self.port), "--portal-port",
                 str(self.portal_port)], env=self.env,
                stdout=log, stderr=log, start_new_session=True, cwd=self.cwd,
            )
        return self.process

    def start(self) -> None:
        self.spawn()
        wait_for(lambda: self.ready(), timeout=30, what=self.log)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.ops}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def nats_pid(self) -> int:
        assert self.process is not None
        children = [int(pid) for task in Path(f"/proc/{self.process.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
        names = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in children}
        [pid] = [pid for pid, name in names.items() if name == "nats-server"]
        return pid

    def lines(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.startswith("{")]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(check, timeout: float, what: object = "condition") -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            detail = what.read_text() if isinstance(what, Path) else what
            raise AssertionError(f"not within {timeout}s: {detail}")
        time.sleep(0.05)
    return time.monotonic() - start
