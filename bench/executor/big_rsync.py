"""``python -m bench.executor.big_rsync``: a big local rsync through the plugin against plain
``rsync`` in the same run (the issue's performance item 3: within 3 %).

Writes a source tree (default 1 GiB in 64 files), then alternates rounds of ``rsync -a src/
dst/`` and the rsync plugin's backup (``--stats -ii --out-format`` parsed into per-file
results, a fresh output folder each time, so both copy everything), flushing dirty pages before
each timed round and deleting its copy after. Prints each round's wall and CPU time (rsync's
and, for the plugin, the Python process's own: reading and parsing rsync's output), the medians
and their ratios; on a busy shared machine the CPU ratio is the steadier figure. ``--verify``
also times the plugin's checksum verification (not part of the comparison). ``--dir
/dev/shm`` takes the disk out of the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from services.executor.plugins.api import Target, TaskContext
from services.executor.plugins.rsync import RsyncPlugin

TARGET_RATIO = 1.03
_BLOCK = 4 * 1024 * 1024


def make_source(root: Path, size_mb: int, files: int) -> int:
    """``files`` files adding up to ``size_mb`` MiB (random blocks, each file's first bytes
    its own); returns the bytes written."""
    root.mkdir(parents=True)
    block = os.urandom(_BLOCK)
    per_file = size_mb * 1024 * 1024 // files
    for n in range(files):
        path = root / f"dir{n % 8}" / f"file{n:04d}.bin"
        path.parent.mkdir(exist_ok=True)
        with path.open("wb") as handle:
            left = per_file
            handle.write(n.to_bytes(8, "big"))
            left -= 8
            while left > 0:
                chunk = block[: min(left, _BLOCK)]
                handle.write(chunk)
                left -= len(chunk)
    return per_file * files


def flush() -> None:
    os.sync()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare(source: Path, output: Path) -> tuple[float, float]:
    """Wall and CPU seconds of plain rsync."""
    flush()
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run(["rsync", "-a", f"{source}/", f"{output}/"], check=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


def through_plugin(source: Path, output: Path,
                   *, verify: bool) -> tuple[float, float, float, int]:
    """Wall and CPU seconds (rsync's and the plugin's own) of the plugin's backup, the
    verification's wall time, and the files listed."""
    plugin = RsyncPlugin()
    ctx = TaskContext(target=Target(name="localhost"), action="rsync.sync",
                      options={"source": str(source)}, output=output,
                      destination=output.parent)
    flush()
    cpu, started = cpu_seconds(), time.perf_counter()
    result = asyncio.run(plugin.backup(ctx))
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    checked = 0.0
    if verify:
        started = time.perf_counter()
        asyncio.run(plugin.verify(ctx, result))
        checked = time.perf_counter() - started
    return elapsed, used, checked, len(result.files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="Size of the source (MiB).")
    parser.add_argument("--files", type=int, default=64, help="Files in the source.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each.")
    parser.add_argument("--verify", action="store_true", help="Also time verification.")
    parser.add_argument("--dir", type=Path, default=None, help="Where to work (default: a "
                        "temporary folder).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rsync-", dir=args.dir))
    try:
        size = make_source(work / "src", args.size_mb, args.files)
        # Read the source once so both sides start from a warm page cache.
        subprocess.run(["cat", *map(str, sorted((work / "src").rglob("*.bin")))],
                       stdout=subprocess.DEVNULL, check=True)
        print(f"source: {size / 2**20:.0f} MiB in {args.files} files, {args.rounds} rounds "
              "each, alternating")
        bare_times: list[float] = []
        plugin_times: list[float] = []
        bare_cpu: list[float] = []
        plugin_cpu: list[float] = []
        for n in range(args.rounds):
            order = ("bare", "plugin") if n % 2 == 0 else ("plugin", "bare")
            for kind in order:
                output = work / "dst" / kind / f"round-{n}"
                output.parent.mkdir(parents=True, exist_ok=True)
                if kind == "bare":
                    elapsed, used = bare(work / "src", output)
                    bare_times.append(elapsed)
                    bare_cpu.append(used)
                    print(f"round {n + 1} rsync alone   {elapsed:7.2f} s  cpu {used:6.2f} s")
                else:
                    elapsed, used, checked, files = through_plugin(work / "src", output,
                                                                   verify=args.verify)
                    plugin_times.append(elapsed)
                    plugin_cpu.append(used)
                    extra = f"  (verify {checked:.2f} s)" if args.verify else ""
                    print(f"round {n + 1} rsync plugin  {elapsed:7.2f} s  cpu {used:6.2f} s, "
                          f"{files} files listed{extra}")
                shutil.rmtree(output)
        bare_median = statistics.median(bare_times)
        plugin_median = statistics.median(plugin_times)
        ratio = plugin_median / bare_median
        verdict = "✓" if ratio <= TARGET_RATIO else "✗"
        print(f"median: rsync alone {bare_median:.2f} s, through the plugin "
              f"{plugin_median:.2f} s; ratio {ratio:.3f} (target ≤ {TARGET_RATIO}) {verdict}")
        print(f"best:   rsync alone {min(bare_times):.2f} s, through the plugin "
              f"{min(plugin_times):.2f} s; ratio {min(plugin_times) / min(bare_times):.3f}")
        cpu_ratio = statistics.median(plugin_cpu) / statistics.median(bare_cpu)
        print(f"cpu (median, rsync + the plugin's own): rsync alone "
              f"{statistics.median(bare_cpu):.2f} s, through the plugin "
              f"{statistics.median(plugin_cpu):.2f} s; ratio {cpu_ratio:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
