"""``backstop run <service>``: one service per process, ops endpoints, clean stop on SIGTERM."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.natsd import free_port
from shared.secretbox import new_key


@pytest.mark.parametrize("service", ["ingest", "evaluator", "notifier", "portal"])
def test_service_is_ready_then_stops_on_sigterm(
    service: str, nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], check=True,
                   env={**os.environ, "BACKSTOP_DATABASE_URL": sqlite_url}, capture_output=True)
    ops_port, ingest_port, portal_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BACKSTOP_NATS_URL": nats_url, "BACKSTOP_DATABASE_URL": sqlite_url,
           "BACKSTOP_OPS_PORT": str(ops_port), "BACKSTOP_DATA_DIR": str(tmp_path),
           "BACKSTOP_SECRET_KEYS": new_key(), "BACKSTOP_INGEST_PORT": str(ingest_port),
           "BACKSTOP_PORTAL_PORT": str(portal_port)}
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "run", service], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                ready = httpx.get(f"http://127.0.0.1:{ops_port}/readyz")
                if ready.status_code == 200:
                    break
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        expected = {"nats": True, "database": True}
        if service == "evaluator":
            expected["evaluator"] = True  # its partitions are held and loaded
        assert ready.json()["checks"] == expected
        metrics = httpx.get(f"http://127.0.0.1:{ops_port}/metrics").text
        assert "backstop_bus_published_total" in metrics
        docs = httpx.get(f"http://127.0.0.1:{ops_port}/openapi.json")
        if service == "ingest":  # the API's document is on the ops port, not the public one
            assert "/v1/runs" in docs.json()["paths"]
            assert httpx.get(f"http://127.0.0.1:{ingest_port}/metrics").status_code == 404
        else:
            assert docs.status_code == 404
        if service == "portal":  # its pages on their own port, the ops endpoints not there
            assert httpx.get(f"http://127.0.0.1:{portal_port}/login").status_code == 200
            assert httpx.get(f"http://127.0.0.1:{portal_port}/metrics").status_code == 404
            assert "backstop_jobs" in metrics  # the backup state, on the ops port
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "backstop stopped" in output


def test_notifier_on_a_shared_database_without_a_key_refuses_to_start(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "BACKSTOP_NATS_URL": nats_url, "BACKSTOP_DATABASE_URL": sqlite_url,
           "BACKSTOP_OPS_PORT": "0", "BACKSTOP_DATA_DIR": str(tmp_path)}
    env.pop("BACKSTOP_SECRET_KEYS", None)
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], check=True, env=env,
                   capture_output=True)
    result = subprocess.run([sys.executable, "-m", "services.cli", "run", "notifier"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "BACKSTOP_SECRET_KEYS is not set" in " ".join(result.stderr.split())
