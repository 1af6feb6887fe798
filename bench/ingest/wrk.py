"""Running wrk and reading its report."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Load:
    method: str
    url: str
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Result:
    requests: int
    non_2xx: int
    socket_errors: int
    seconds: float
    p99_ms: float

    @property
    def ok(self) -> int:
        """2xx answers (wrk counts 3xx as fine too; ingest sends none)."""
        return self.requests - self.non_2xx

    @property
    def errors(self) -> int:
        """Answers that were not 2xx, and requests that got no answer."""
        return self.non_2xx + self.socket_errors

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds


def combined(results: list[Result]) -> Result:
    """Several runs as one: counts and time add up; the p99 is the worst run's."""
    return Result(
        requests=sum(r.requests for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        seconds=sum(r.seconds for r in results),
        p99_ms=max(r.p99_ms for r in results),
    )


def _lua(load: Load) -> str:
    lines = [f'wrk.method = "{load.method}"']
    if load.body is not None:
        lines.append(f"wrk.body = [[{load.body}]]")
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in load.headers]
    return "\n".join(lines) + "\n"


def run_wrk(load: Load, *, seconds: int, connections: int, threads: int = 2) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(load))
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
             "--timeout", "5s", "-s", script.name, load.url],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    return parse(out)


def parse(report: str) -> Result:
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", report)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(\w+)", report, re.M)
    if total is None or p99 is None:
        raise ValueError(f"unexpected wrk output:\n{report}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    seconds = float(total.group(2)) * _UNITS[total.group(3)] / 1000.0
    return Result(
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        seconds=seconds,
        p99_ms=float(p99.group(1)) * _UNITS[p99.group(2)],
    )
