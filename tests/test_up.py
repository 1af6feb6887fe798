"""``backstop up`` as an operator runs it: where its endpoints are, and how its embedded
nats-server follows it through crashes, restarts and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.natsd import free_port

BACKSTOP = [sys.executable, "-m", "services.cli"]


class Up:
    """``backstop up`` as a child process in its own session (as a terminal would start it)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.ops_port = free_port()
        self.portal_port = free_port()
        self.env = {**os.environ, "BACKSTOP_DATA_DIR": str(data_dir),
                    "BACKSTOP_OPS_PORT": str(self.ops_port), "BACKSTOP_LOG_FORMAT": "json"}
        for name in ("BACKSTOP_NATS_URL", "BACKSTOP_DATABASE_URL", "BACKSTOP_OPS_HOST"):
            self.env.pop(name, None)
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
                              text=True).stdout

    def spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*BACKSTOP, "up", "--ingest-port", str(self.port), "--portal-port",
                 str(self.portal_port)], env=self.env,
                stdout=log, stderr=log, start_new_session=True,
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


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    system = Up(tmp_path)
    yield system
    system.stop()


@pytest.mark.slow
def test_ops_endpoints_are_served_on_the_ops_port_only(up: Up) -> None:
    up.start()
    for path in ("/metrics", "/docs", "/openapi.json", "/healthz", "/readyz"):
        assert httpx.get(up.ingest + path).status_code == 404, path
    assert "backstop_bus_published_total" in httpx.get(f"{up.ops}/metrics").text
    assert httpx.get(f"{up.ops}/docs").status_code == 200
    assert "/v1/runs" in httpx.get(f"{up.ops}/openapi.json").json()["paths"]
    ready = [line["msg"] for line in up.lines() if line["msg"].startswith("backstop ready")]
    assert ready == [f"backstop ready: ingest API http://0.0.0.0:{up.port}, "
                     f"portal http://0.0.0.0:{up.portal_port}, "
                     f"ops http://127.0.0.1:{up.ops_port} (/metrics /healthz /readyz /docs), "
                     f"outbox {up.data_dir / 'outbox'}"]


@pytest.mark.slow
def test_nats_server_dies_with_a_killed_backstop_up(up: Up) -> None:
    up.start()
    nats = up.nats_pid()
    assert up.process is not None
    up.process.kill()
    up.process.wait()
    assert wait_for(lambda: not alive(nats), timeout=1.0) < 1.0


@pytest.mark.slow
def test_a_second_server_on_the_same_store_is_refused(up: Up) -> None:
    up.start()
    assert up.process is not None
    second = Up(up.data_dir)
    process = second.spawn()
    assert process.wait(timeout=30) != 0
    assert f"held by pid {up.process.pid}" in second.log.read_text()
    assert up.ready()


@pytest.mark.slow
def test_a_crashed_nats_server_is_restarted(up: Up) -> None:
    account = json.loads(up.cli("accounts", "create", "--reseller", "R", "--customer", "C",
                                "--name", "a", "--email", "ops@example.com", "--json"))
    headers = {"Authorization": f"Bearer {account['token']}"}
    up.start()
    os.kill(up.nats_pid(), signal.SIGKILL)

    def accepted() -> bool:
        answer = httpx.post(f"{up.ingest}/v1/runs", json={"job": "j", "status": "success"},
                            headers=headers, timeout=10)
        return answer.status_code == 202

    assert wait_for(accepted, timeout=10) < 10
    assert any("nats-server exited" in line["msg"] for line in up.lines())


@pytest.mark.slow
def test_ctrl_c_stops_the_services_before_the_nats_server(up: Up) -> None:
    up.start()
    assert up.process is not None
    os.killpg(up.process.pid, signal.SIGINT)  # what the terminal sends to its foreground group
    assert up.process.wait(timeout=30) == 0
    lines = up.lines()
    assert "backstop stopped" in [line["msg"] for line in lines]
    # A clean stop is quiet: a server gone first shows as nats errors, and our own drain must
    # not be reported as a lost connection.
    loud = [line["msg"] for line in lines if line["level"] in ("warning", "error", "critical")]
    assert loud == [], loud


@pytest.mark.slow
def test_try_it_ends_with_the_failed_job_in_the_portal(up: Up) -> None:
    """The README's "Try it", to its end: a failed run, its e-mail, a portal user who logs in
    and sees the failed job, and the e-mail's link, which leads to the alert's page."""
    portal = f"http://127.0.0.1:{up.portal_port}"
    up.env["BACKSTOP_PUBLIC_URL"] = portal
    account = json.loads(up.cli("accounts", "create", "--reseller", "My MSP", "--customer",
                                "Acme", "--name", "fileserver", "--email", "ops@acme.example",
                                "--json"))
    up.start()
    answer = httpx.post(f"{up.ingest}/v1/runs", headers={
        "Authorization": f"Bearer {account['token']}"}, json={
        "job": "nightly", "status": "failure", "message": "disk full", "exit_code": 2})
    assert answer.status_code == 202
    subprocess.run([*BACKSTOP, "users", "add", "me@msp.example", "--role", "operator",
                    "--password-stdin"], env=up.env, check=True, capture_output=True,
                   input=b"a long enough password\n")
    outbox = up.data_dir / "outbox"
    wait_for(lambda: any(outbox.glob("*.eml")), timeout=20, what=up.log)
    mail = next(outbox.glob("*.eml")).read_text()
    link = re.search(rf"{re.escape(portal)}/alerts/\w+", mail)
    assert link, mail
    with httpx.Client(base_url=portal) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        logged_in = browser.post("/login", data={
            "email": "me@msp.example", "password": "a long enough password",
            "csrf_token": token.group(1)})
        assert logged_in.status_code == 303
        overview = browser.get("/")
        first = overview.text.split("<tbody>")[1].split("</tr>")[0]
        assert ">nightly</a>" in first and ">failing</span>" in first
        alert = browser.get(link.group(0).removeprefix(portal))
        assert alert.status_code == 200 and "disk full" in alert.text
