"""A throw-away OpenLDAP server with the Backstop schema, for the directory tests (the
fixtures starting it live in tests/conftest.py). It logs its operations (loglevel stats) to
``slapd.log`` in its folder, so tests can count the searches it served."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import ldap3

from shared.natsd import free_port

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "deploy" / "ldap" / "backstop.schema"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "secret"
# A bind DN allowed to change entries (as BACKSTOP_LDAP_WRITE_BIND_DN), not the root DN.
WRITER_DN = f"cn=backstop-writer,{SUFFIX}"
WRITER_PW = "writer-secret"


class Slapd:
    """A throw-away OpenLDAP server: core, cosine, inetorgperson, nis and the Backstop schema."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "slapd.log"
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
access to * by dn.exact="{WRITER_DN}" write by * read
""")

    def start(self) -> None:
        with self.log.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                ["/usr/sbin/slapd", "-f", str(self.workdir / "slapd.conf"), "-h", self.url + "/",
                 "-d", "stats"],
                stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.log.read_text()[-2000:]!r}")
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

    def searches(self, base: str) -> int:
        """How many search operations under ``base`` (an exact base DN) the server received."""
        wanted = f'SRCH base="{base}"'.lower()
        return sum(1 for line in self.log.read_text(errors="replace").splitlines()
                   if wanted in line.lower())

    def admin(self) -> ldap3.Connection:
        return ldap3.Connection(self.url, ROOT_DN, ROOT_PW, auto_bind=True)

    def seed_tree(self) -> None:
        with self.admin() as conn:
            conn.add(SUFFIX, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
            conn.add(WRITER_DN, ["organizationalRole", "simpleSecurityObject"],
                     {"cn": "backstop-writer", "userPassword": WRITER_PW})
            for ou in ("people", "services"):
                conn.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
            conn.add(f"ou=backup,ou=services,{SUFFIX}", ["organizationalUnit"], {"ou": "backup"})
            conn.add(f"ou=accounts,ou=backup,ou=services,{SUFFIX}", ["organizationalUnit"],
                     {"ou": "accounts"})

    def add_account(self, uid: str, **attrs: Any) -> None:
        with self.admin() as conn:
            ok = conn.add(self.account_dn(uid), ["account", "sstBackupAccount"],
                          {"uid": uid, **attrs})
            assert ok, conn.result

    def add_person(self, uid: str, mails: list[str], password: str | None = None) -> str:
        dn = f"uid={uid},ou=people,{SUFFIX}"
        with self.admin() as conn:
            extra = {"userPassword": password} if password else {}
            ok = conn.add(dn, ["inetOrgPerson"],
                          {"uid": uid, "cn": uid, "sn": uid, "mail": mails, **extra})
            assert ok, conn.result
        return dn

    def account_dn(self, uid: str) -> str:
        return f"uid={ldap3.utils.dn.escape_rdn(uid)},ou=accounts,ou=backup,ou=services,{SUFFIX}"

    def ldapsearch(self, base: str, *attributes: str) -> dict[str, list[str]]:
        """The entry at ``base`` as the ``ldapsearch`` command line tool reads it (anonymous)."""
        out = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.url, "-b", base,
             "-s", "base", "(objectClass=*)", *attributes],
            check=True, capture_output=True, text=True, timeout=10).stdout
        found: dict[str, list[str]] = {}
        for line in out.splitlines():
            name, sep, value = line.partition(": ")
            if sep and name != "dn":
                found.setdefault(name, []).append(value)
        return found

    def modified_attributes(self, dn: str) -> list[list[str]]:
        """For each modify operation on ``dn`` the server served, the attributes it changed."""
        lines = self.log.read_text(errors="replace").splitlines()
        out = []
        for index, line in enumerate(lines):
            if f'MOD dn="{dn}"'.lower() in line.lower():
                for later in lines[index + 1:index + 4]:
                    if " MOD attr=" in later:
                        out.append(later.split(" MOD attr=", 1)[1].split())
                        break
        return out
