"""Notifier fixtures: a real slapd with the Backstop schema, and a real HTTP webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ldap3
import pytest

from shared.natsd import free_port

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "deploy" / "ldap" / "backstop.schema"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "secret"


# --- slapd -----------------------------------------------------------------------------------


class Slapd:
    """A throw-away OpenLDAP server: core, cosine, inetorgperson, nis and the Backstop schema."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        includes = "\n".join(f"include /etc/ldap/schema/{n}.schema"
                             for n in ("core", "cosine", "inetorgperson", "nis"))
        (workdir / "slapd.conf").write_text(f"""{includes}
include {SCHEMA}
pidfile {workdir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {workdir}/data
""")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-f", str(self.workdir / "slapd.conf"), "-h", self.url + "/",
             "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def admin(self) -> ldap3.Connection:
        return ldap3.Connection(self.url, ROOT_DN, ROOT_PW, auto_bind=True)

    def seed_tree(self) -> None:
        with self.admin() as conn:
            conn.add(SUFFIX, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
            for ou in ("people", "services"):
                conn.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
            conn.add(f"ou=backup,ou=services,{SUFFIX}", ["organizationalUnit"], {"ou": "backup"})
            conn.add(f"ou=accounts,ou=backup,ou=services,{SUFFIX}", ["organizationalUnit"],
                     {"ou": "accounts"})

    def add_account(self, uid: str, **attrs: Any) -> None:
        with self.admin() as conn:
            ok = conn.add(f"uid={ldap3.utils.dn.escape_rdn(uid)},ou=accounts,ou=backup,"
                          f"ou=services,{SUFFIX}", ["account", "sstBackupAccount"],
                          {"uid": uid, **attrs})
            assert ok, conn.result

    def add_person(self, uid: str, mails: list[str]) -> None:
        with self.admin() as conn:
            ok = conn.add(f"uid={uid},ou=people,{SUFFIX}", ["inetOrgPerson"],
                          {"uid": uid, "cn": uid, "sn": uid, "mail": mails})
            assert ok, conn.result


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


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server recording every POST; ``replies`` scripts the next answers."""

    url: str
    requests: list[Received] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body,
                                                  time.time()))
                status, headers = receiver.replies.pop(0) if receiver.replies else (202, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
