"""``backstop up`` keeps its data to its owner: every directory 0700, every file 0600."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.natsd import free_port

BACKSTOP = [sys.executable, "-m", "services.cli"]


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.slow
def test_fresh_start_leaves_only_owner_readable_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    # An older version made these world-readable: they are tightened at start.
    (data_dir / "outbox").mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    port = free_port()
    env = {**os.environ, "BACKSTOP_DATA_DIR": str(data_dir), "BACKSTOP_LOG_FORMAT": "json"}
    for name in ("BACKSTOP_NATS_URL", "BACKSTOP_DATABASE_URL", "BACKSTOP_SECRET_KEYS",
                 "BACKSTOP_SMTP_HOST", "BACKSTOP_OUTBOX_DIR"):
        env.pop(name, None)
    os.umask(old := os.umask(0o022))  # whatever the caller's umask, the files are private
    account = json.loads(subprocess.run(
        [*BACKSTOP, "accounts", "create", "--reseller", "R", "--customer", "C", "--name", "a",
         "--email", "ops@example.com", "--json"],
        env=env, check=True, capture_output=True, text=True).stdout)
    subprocess.run([*BACKSTOP, "webhooks", "add", "--reseller", "R", "--url",
                    "https://psa.example/hook"], env=env, check=True, capture_output=True)
    log = open(tmp_path / "up.log", "ab")
    process = subprocess.Popen([*BACKSTOP, "up", "--ingest-port", str(port)], env=env,
                               stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/runs",
                                    json={"job": "nightly", "status": "failure"},
                                    headers={"Authorization": f"Bearer {account['token']}"})
                if answer.status_code == 202:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
        while not list((data_dir / "outbox").glob("*.eml")):
            assert time.monotonic() < deadline + 30, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    os.umask(old)

    found = modes(data_dir)
    for name in ("backstop.db", "secret.key"):
        assert found[name] == 0o600, found
    for name in (".", "outbox", "nats"):
        assert found[name] == 0o700, found
    assert any(n.endswith(".eml") for n in found) and any(n.startswith("nats/") for n in found)
    open_to_others = {n: oct(m) for n, m in found.items() if m & 0o077}
    assert open_to_others == {}
