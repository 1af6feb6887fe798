"""``python -m bench.ingest``: real ingest vs a bare FastAPI app, both driven by wrk.

Prints 2xx requests/s and p99 latency for ``POST /v1/runs`` and ``GET /ping/<key>`` on each,
the ratio real/bare, and whether the targets hold (ratio >= 0.6, no non-2xx, p99 <= 50 ms).
Real and bare take turns in short rounds and the ratio is the median round's, because a shared
VM's speed drifts too much for one long run of each to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.ingest.cpu import cpu_seconds
from bench.ingest.instructions import callgrind, executed_since_zero, zero
from bench.ingest.wrk import Load, Result, combined, run_wrk
from shared.bus import Bus
from shared.config import IngestSettings
from shared.db import Database
from shared.natsd import client_url, free_port
from shared.streams import INGEST
from shared.tenancy import create_account

ROOT = Path(__file__).resolve().parents[2]
RUN = {
    "job": "nightly-db", "status": "success", "exit_code": 0, "duration_seconds": 93.5,
    "bytes_transferred": 123_456_789, "files_transferred": 1234, "error_count": 0,
    "client_name": "bench", "client_version": "1.0",
}
TARGET_RATIO, TARGET_P99_MS = 0.6, 50.0


def _account(data_dir: Path) -> tuple[str, str]:
    db = Database(IngestSettings(data_dir=data_dir).sqlalchemy_url())
    db.upgrade()
    with db.session() as session:
        issued = create_account(session, reseller="bench", customer="bench", name="bench",
                                contacts=[])
    db.dispose()
    return issued.token, issued.ping_key


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@dataclass(frozen=True)
class Measured:
    result: Result
    cpu_us_per_ok: float  # CPU time of the server's process tree per 2xx answer


@dataclass(frozen=True)
class Comparison:
    """One endpoint on both servers, measured in alternating rounds."""

    real: Measured
    bare: Measured
    round_ratios: list[float]  # real/bare throughput of each round

    @property
    def ratio(self) -> float:
        # The median round: a slowdown of the machine that hits one slice moves it least.
        return statistics.median(self.round_ratios)


@contextlib.contextmanager
def _server(kind: str, port: int, *extra: str, prefix: Sequence[str] = ()) -> Iterator[Server]:
    command = [*prefix, sys.executable, "-m", "bench.ingest.servers", kind, "--port", str(port),
               *extra]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        # Under valgrind, starting takes a minute or two.
        _wait_listening(port, process, timeout=600 if prefix else 30)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"server did not listen on {port}")


ENDPOINTS = ("POST /v1/runs", "GET /ping/<key>")
KINDS = ("real", "bare")


def _loads(base: str, token: str, ping_key: str) -> dict[str, Load]:
    return {
        "POST /v1/runs": Load("POST", f"{base}/v1/runs", json.dumps(RUN), (
            ("Content-Type", "application/json"), ("Authorization", f"Bearer {token}"))),
        "GET /ping/<key>": Load("GET", f"{base}/ping/{ping_key}"),
    }


def _slice(load: Load, server: Server, seconds: int, connections: int) -> tuple[Result, float]:
    """One wrk run and the CPU seconds the server's process tree spent in it."""
    before = cpu_seconds(server.pid)
    result = run_wrk(load, seconds=seconds, connections=connections)
    return result, cpu_seconds(server.pid) - before


def _compare(loads: dict[str, Load], servers: dict[str, Server],
             args: argparse.Namespace) -> tuple[Comparison, int]:
    """Real and bare in alternating rounds, so both see the same machine: on a shared VM the
    speed drifts by tens of percent within a minute. Also returns the real server's 2xx count
    (warm-up included), to check against the stream."""
    warmups = {kind: run_wrk(loads[kind], seconds=args.warmup, connections=args.connections)
               for kind in KINDS}  # fills caches and connections
    slices: dict[str, list[tuple[Result, float]]] = {kind: [] for kind in KINDS}
    per_round = max(1, args.seconds // args.rounds)
    for _ in range(args.rounds):
        for kind in KINDS:
            slices[kind].append(_slice(loads[kind], servers[kind], per_round, args.connections))
    measured = {kind: _summed(slices[kind]) for kind in KINDS}
    ratios = [real.ok_per_second / bare.ok_per_second
              for (real, _), (bare, _) in zip(slices["real"], slices["bare"], strict=True)]
    answered = warmups["real"].ok + measured["real"].result.ok
    return Comparison(measured["real"], measured["bare"], ratios), answered


def _summed(slices: list[tuple[Result, float]]) -> Measured:
    result = combined([r for r, _ in slices])
    return Measured(result, sum(cpu for _, cpu in slices) / max(1, result.ok) * 1e6)


async def _stored_events(nats_url: str) -> int:
    """Messages in the ingest stream: proof the real server stored what it answered."""
    bus = Bus(nats_url, name="bench-check")
    await bus.connect(ensure_topology=False)
    try:
        return int((await bus.js.stream_info(INGEST.name)).state.messages)
    finally:
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--seconds", type=int,
                        help="wrk time per endpoint and server, split into the rounds "
                        "(default 10; 15 with --instructions)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating real/bare rounds per endpoint")
    parser.add_argument("--warmup", type=int,
                        help="wrk warm-up before each (default 2; 5 with --instructions: "
                        "under valgrind a shorter one leaves the server cold)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--instructions", action="store_true",
                        help="compare instructions per request under valgrind instead (slow)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    slow = args.instructions
    args.seconds = args.seconds or (15 if slow else 10)
    args.warmup = args.warmup or (5 if slow else 2)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        data_dir = Path(tmp)
        token, ping_key = _account(data_dir)
        nats_port = free_port()
        real_args = ("--data-dir", str(data_dir), "--nats-port", str(nats_port))
        prefixes: dict[str, list[str]] = {kind: [] for kind in KINDS}
        if args.instructions:
            prefixes = {kind: callgrind(data_dir, kind) for kind in KINDS}
        with _server("real", free_port(), *real_args, prefix=prefixes["real"]) as real, \
                _server("bare", free_port(), prefix=prefixes["bare"]) as bare:
            servers = {"real": real, "bare": bare}
            loads = {endpoint: {kind: _loads(server.url, token, ping_key)[endpoint]
                                for kind, server in servers.items()} for endpoint in ENDPOINTS}
            if args.instructions:
                ok, answered = _by_instructions(loads, servers, data_dir, args)
            else:
                ok, answered = _by_throughput(loads, servers, args)
            stored = asyncio.run(_stored_events(client_url(data_dir / "nats", nats_port)))
    print(f"\nreal: {answered} answered 2xx, {stored} events in JetStream stream {INGEST.name}")
    ok = ok and stored >= answered
    sys.exit(0 if ok or not args.strict else 1)


def _by_throughput(loads: dict[str, dict[str, Load]], servers: dict[str, Server],
                   args: argparse.Namespace) -> tuple[bool, int]:
    results: dict[str, Comparison] = {}
    answered = 0
    for endpoint in ENDPOINTS:
        results[endpoint], oks = _compare(loads[endpoint], servers, args)
        answered += oks
    return _report(results, args), answered


def _by_instructions(loads: dict[str, dict[str, Load]], servers: dict[str, Server],
                     out_dir: Path, args: argparse.Namespace) -> tuple[bool, int]:
    print(f"\ncallgrind: instructions of each server process per 2xx answer, wrk "
          f"{args.connections} connections for {args.seconds} s after a {args.warmup} s "
          "warm-up (nats-server not counted)\n")
    print(f"{'endpoint':18} {'real':>14} {'bare':>14} {'ratio':>6}")
    answered, ok = 0, True
    for endpoint in ENDPOINTS:
        per_request: dict[str, float] = {}
        for kind in KINDS:
            load, pid = loads[endpoint][kind], servers[kind].pid
            warmup = run_wrk(load, seconds=args.warmup, connections=args.connections)
            zero(pid)
            result = run_wrk(load, seconds=args.seconds, connections=args.connections)
            per_request[kind] = executed_since_zero(pid, out_dir) / max(1, result.ok)
            ok = ok and result.errors == 0
            if kind == "real":
                answered += warmup.ok + result.ok
        ratio = per_request["bare"] / per_request["real"]
        ok = ok and ratio >= TARGET_RATIO
        verdict = "ok" if ratio >= TARGET_RATIO else "MISSED"
        print(f"{endpoint:18} {per_request['real']:14,.0f} {per_request['bare']:14,.0f} "
              f"{ratio:6.2f}  [ratio >= {TARGET_RATIO} {verdict}]")
    return ok, answered


def _report(results: dict[str, Comparison], args: argparse.Namespace) -> bool:
    print(f"\nwrk: {args.connections} connections, {args.rounds} alternating rounds of "
          f"{max(1, args.seconds // args.rounds)} s per server; throughput counts 2xx answers "
          "only; p99 is the worst round's; CPU = server process tree per 2xx answer\n")
    print(f"{'endpoint':18} {'server':6} {'2xx req/s':>10} {'p99 ms':>8} {'non-2xx':>8} "
          f"{'sock err':>8} {'CPU us/req':>10}")
    for endpoint, comparison in results.items():
        for kind, m in (("real", comparison.real), ("bare", comparison.bare)):
            r = m.result
            print(f"{endpoint:18} {kind:6} {r.ok_per_second:10.0f} {r.p99_ms:8.2f} "
                  f"{r.non_2xx:8d} {r.socket_errors:8d} {m.cpu_us_per_ok:10.0f}")
    ok = True
    print()
    for endpoint, comparison in results.items():
        real, ratio = comparison.real.result, comparison.ratio
        cpu_ratio = comparison.bare.cpu_us_per_ok / comparison.real.cpu_us_per_ok
        checks = {
            f"ratio {ratio:.2f} >= {TARGET_RATIO}": ratio >= TARGET_RATIO,
            f"non-2xx {real.errors} == 0": real.errors == 0,
            f"p99 {real.p99_ms:.1f} ms <= {TARGET_P99_MS:.0f} ms": real.p99_ms <= TARGET_P99_MS,
        }
        ok = ok and all(checks.values())
        verdicts = ", ".join(f"{name} {'ok' if good else 'MISSED'}"
                             for name, good in checks.items())
        rounds = " ".join(f"{r:.2f}" for r in comparison.round_ratios)
        print(f"{endpoint:18} real/bare = {ratio:.2f} (median round; rounds {rounds}; "
              f"by CPU per request: {cpu_ratio:.2f})\n{'':18} [{verdicts}]")
    return ok


if __name__ == "__main__":
    main()
