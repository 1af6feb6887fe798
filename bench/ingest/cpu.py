"""CPU seconds a process tree used, from /proc: a contention-proof cost per request.

Throughput on a shared machine moves with whatever else runs; the CPU time the servers spend
per answered request does not, so the benchmark prints both.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants (e.g. ingest and its nats-server)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return own + sum(cpu_seconds(child) for child in _children(pid))
