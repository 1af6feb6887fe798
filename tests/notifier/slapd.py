"""A throw-away OpenLDAP server with the Backstop schema, for the directory tests (the
fixtures starting it live in conftest.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import ldap3

from shared.natsd import free_port

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "deploy" / "ldap" / "backstop.schema"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "secret"


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
