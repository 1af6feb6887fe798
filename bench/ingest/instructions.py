"""Instructions a server executes, counted by valgrind's callgrind: a cost no other load changes.

On a shared VM, throughput and even CPU time per request move by a third within a minute. The
number of instructions a request takes does not, so ``--instructions`` compares the servers by
it. The server runs under ``valgrind --tool=callgrind`` (about 50 times slower, which only
lengthens the run); counting is zeroed after the warm-up and dumped after the measured load.
Child processes (the real server's nats-server) are not counted.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def callgrind(out_dir: Path, kind: str) -> list[str]:
    """The command prefix that runs a server under callgrind, dumping into ``out_dir``."""
    return ["valgrind", "--quiet", "--tool=callgrind", "--trace-children=no",
            f"--callgrind-out-file={out_dir / kind}.%p"]


def zero(pid: int) -> None:
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)


def executed_since_zero(pid: int, out_dir: Path) -> int:
    """Instructions the process executed since :func:`zero`."""
    before = set(out_dir.glob(f"*.{pid}*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    (dump,) = set(out_dir.glob(f"*.{pid}*")) - before
    return total(dump.read_text())


def total(dump: str) -> int:
    found = re.search(r"^(?:summary|totals): (\d+)", dump, re.M)
    if found is None:
        raise ValueError("no instruction total in the callgrind dump")
    return int(found.group(1))
