"""Kill ``backstop up`` with SIGKILL between the 202 and the e-mail: after a restart the e-mail
is still sent, and exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.natsd import free_port

BACKSTOP = [sys.executable, "-m", "services.cli"]


class Embedded:
    """``backstop up`` as a child process, on its own data dir, e-mailing a real SMTP server."""

    def __init__(self, data_dir: Path, smtp_port: int) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.ops_port = free_port()
        self.env = {
            **os.environ, "BACKSTOP_DATA_DIR": str(data_dir), "BACKSTOP_SMTP_HOST": "127.0.0.1",
            "BACKSTOP_SMTP_PORT": str(smtp_port), "BACKSTOP_LOG_FORMAT": "json",
            "BACKSTOP_OPS_PORT": str(self.ops_port),
        }
        for name in ("BACKSTOP_NATS_URL", "BACKSTOP_DATABASE_URL"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [*BACKSTOP, *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def start(self) -> None:
        log = open(self.data_dir / "up.log", "ab")
        self.process = subprocess.Popen(
            [*BACKSTOP, "up", "--ingest-port", str(self.port)], env=self.env,
            stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.ops_port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError((self.data_dir / "up.log").read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)

    def create_account(self) -> dict[str, str]:
        """An account mailing ops@example.com; returns the headers its uploads carry."""
        account = json.loads(self.cli(
            "accounts", "create", "--reseller", "R", "--customer", "C", "--name", "a",
            "--email", "ops@example.com", "--json",
        ))
        return {"Authorization": f"Bearer {account['token']}"}

    @property
    def runs_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/runs"

    def attempts(self) -> int:
        with sqlite3.connect(self.data_dir / "backstop.db") as conn:
            return int(conn.execute("SELECT COALESCE(SUM(attempts), 0) FROM notifications")
                       .fetchone()[0])


@pytest.fixture
def embedded(tmp_path: Path, smtp_server) -> Iterator[Embedded]:  # type: ignore[no-untyped-def]
    controller, _ = smtp_server
    system = Embedded(tmp_path, controller.port)
    yield system
    system.stop()


def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@pytest.mark.slow
def test_email_survives_sigkill_and_is_sent_exactly_once(embedded: Embedded, smtp_server) -> None:  # type: ignore[no-untyped-def]
    _, sink = smtp_server
    sink.reject_with = "451 4.3.0 try again later"
    headers = embedded.create_account()
    embedded.start()
    url = embedded.runs_url

    # 1: killed mid-delivery (the SMTP server deferred the first attempt).
    assert httpx.post(url, json={"job": "one", "status": "failure"}, headers=headers
                      ).status_code == 202
    wait_for(lambda: embedded.attempts() >= 1)
    # 2: killed right after the 202, before anything downstream could run.
    assert httpx.post(url, json={"job": "two", "status": "failure"}, headers=headers
                      ).status_code == 202
    embedded.kill()
    assert sink.messages == []

    sink.reject_with = None
    embedded.start()
    wait_for(lambda: len(sink.messages) >= 2)
    time.sleep(2.0)  # anything sent twice would arrive within this time
    subjects = sorted(str(m["Subject"]) for m in sink.messages)
    assert len(subjects) == 2, subjects
    assert "one" in subjects[0] and "two" in subjects[1]


@pytest.mark.slow
def test_emails_in_flight_at_a_kill_go_out_at_once_after_a_restart(embedded: Embedded,
                                                                   smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The restarted notifier has the same name (the host name): it takes back the deliveries
    its killed run had leased, rather than waiting out the 120 s lease."""
    _, sink = smtp_server
    sink.hold = 300.0  # the SMTP server keeps both e-mails in DATA: in flight, leased
    headers = embedded.create_account()
    embedded.start()
    url = embedded.runs_url
    for job in ("one", "two"):
        assert httpx.post(url, json={"job": job, "status": "failure"}, headers=headers
                          ).status_code == 202
    wait_for(lambda: sink.held >= 2)
    embedded.kill()

    sink.hold = 0.0
    started = time.monotonic()
    embedded.start()
    wait_for(lambda: len(sink.messages) >= 2, timeout=20)  # the lease is 120 s
    assert time.monotonic() - started < 20
    subjects = sorted(str(m["Subject"]) for m in sink.messages)
    assert "one" in subjects[0] and "two" in subjects[1]
