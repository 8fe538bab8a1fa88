"""segsync score against hand-written polars and numpy, on the same file, in one run.

    python -m benchmarks compute --purchases 1000000 10000000 [--rounds 3] [--formats csv parquet]

For each size it writes seeded CDNOW-like data (benchmarks/datagen.py) as CSV and parquet, then
runs, as separate processes and alternating their order each round, ``segsync score`` (the
whole command: start-up, read, score, write), the polars reference and the numpy reference
(benchmarks/references.py). Printed per file: median wall time (min-max), peak RSS, and the
ratio to polars; with two sizes or more, how segsync's time scales (the exponent of N).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.datagen import AS_OF

HERE = Path(__file__).resolve().parent
IMPLEMENTATIONS = ("segsync", "polars", "numpy")


def command(impl: str, source: Path, out: Path) -> list[str]:
    if impl == "segsync":
        return [
            sys.executable,
            "-m",
            "segsync.cli",
            "score",
            str(source),
            "--out",
            str(out),
            "--as-of",
            AS_OF.isoformat(),
        ]
    return [sys.executable, str(HERE / "references.py"), impl, str(source), str(out), AS_OF.isoformat()]


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({status}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def _data(n: int, folder: Path) -> dict[str, Path]:
    """The files, written by a child process: a forked child starts with its parent's resident
    memory, which would count in every measured process's peak RSS."""
    code = f"from benchmarks.datagen import write; write({n}, __import__('pathlib').Path({str(folder)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE.parent)  # noqa: S603
    return {"csv": folder / f"purchases-{n}.csv", "parquet": folder / f"purchases-{n}.parquet"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks compute", description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet"])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "segsync-bench")
    args = parser.parse_args(argv)
    python = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, Python {python}; as of {AS_OF}; {args.rounds} rounds, medians")
    totals: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as work:
        for n in args.purchases:
            files = _data(n, args.data)
            for fmt in args.formats:
                walls: dict[str, list[float]] = {i: [] for i in IMPLEMENTATIONS}
                peaks: dict[str, list[float]] = {i: [] for i in IMPLEMENTATIONS}
                for r in range(args.rounds):
                    order = IMPLEMENTATIONS if r % 2 == 0 else tuple(reversed(IMPLEMENTATIONS))
                    for impl in order:
                        wall, peak = measure(
                            command(impl, files[fmt], Path(work) / f"{impl}.{fmt}"), Path(work)
                        )
                        walls[impl].append(wall)
                        peaks[impl].append(peak)
                ref = statistics.median(walls["polars"])
                print(f"\n{n:,} purchases, {fmt}:")
                print(f"  {'':8} {'wall (median)':>14} {'min-max':>14} {'peak RSS':>10} {'÷ polars':>9}")
                for impl in IMPLEMENTATIONS:
                    med = statistics.median(walls[impl])
                    lo, hi = min(walls[impl]), max(walls[impl])
                    peak = max(peaks[impl])
                    print(
                        f"  {impl:8} {med:>12.2f} s {lo:>6.2f}-{hi:<6.2f} {peak:>7.0f} MiB {med / ref:>8.2f}×"
                    )
                totals[(fmt, n)] = statistics.median(walls["segsync"])
    sizes = sorted(args.purchases)
    if len(sizes) > 1:
        for fmt in args.formats:
            a, b = totals[(fmt, sizes[0])], totals[(fmt, sizes[-1])]
            exponent = math.log(b / a) / math.log(sizes[-1] / sizes[0])
            span = f"{sizes[0]:,} → {sizes[-1]:,} purchases"
            print(f"\nscaling, {fmt}: {span}: time × {b / a:.1f}, exponent {exponent:.2f}")


if __name__ == "__main__":
    main()
