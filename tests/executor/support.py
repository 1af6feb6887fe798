"""Helpers for the executor's tests: a real sshd on a free port with its own keys, and trees of
files to back up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services.executor.plugins.api import Item, SshAccess, Target, TaskContext
from shared.natsd import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)


@dataclass
class Sshd:
    """An sshd of its own (``sshd -D -e``) on 127.0.0.1:``port``, accepting ``client_key`` for
    the current user, and stopped by :meth:`stop`."""

    folder: Path
    port: int = 0
    client_key: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key = self.folder / "host_ed25519"
        self.client_key = self.folder / "client_ed25519"
        _keygen(host_key)
        _keygen(self.client_key)
        authorized = self.folder / "authorized_keys"
        authorized.write_text((self.folder / "client_ed25519.pub").read_text())
        authorized.chmod(0o600)
        self.port = self.port or free_port()
        config = self.folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PidFile none",
            "PermitRootLogin prohibit-password", "LogLevel ERROR", ""]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.process.stderr.read().decode()}"  # type: ignore[union-attr]
                                   )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def access(self) -> SshAccess:
        return SshAccess(user=os.environ.get("USER") or _user(), port=self.port,
                         key=self.client_key,
                         options=("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
                                  "LogLevel=ERROR"))

    def target(self, name: str = "remote") -> Target:
        return Target(name=name, address="127.0.0.1", ssh=self.access())


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Files (relative path → content) under ``root``; returns ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def stamp(moment: datetime) -> str:
    """The executor's folder name for a backup taken at ``moment``."""
    return moment.strftime("%Y-%m-%d-%H-%M-%S-") + f"{moment.microsecond // 1000:03d}"


def context(action: str, output: Path, *, target: Target | None = None,
            item: str = "all", **options: object) -> TaskContext:
    """A task's context writing into ``output`` (its parent is the series folder)."""
    return TaskContext(target=target or Target(name="localhost"), item=Item(name=item),
                       action=action, options=dict(options), output=output,
                       destination=output.parent, env={"BACKSTOP_PLAN": "test"})


def unreachable_target() -> Target:
    """An ssh target on a port nothing listens on."""
    return Target(name="down", address="127.0.0.1", ssh=SshAccess(
        user="nobody", port=free_port(), connect_timeout=3,
        options=("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null")))
