"""Scoring from the purchase ledger in the state store (the product's real path), against polars.

    python -m benchmarks ledger --purchases 1000000 10000000 [--rounds 3] [--objects-up-to N]

For each size it builds, once and outside the timing, a state store whose ledger (platform
"bench", account "a") holds the seeded CDNOW-like purchases of benchmarks/datagen.py as base
chunks, and writes the same purchases as parquet. Then it runs, as separate processes and
alternating their order each round:

* ``segsync``: open the store, read the ledger's columns (``ledger_rows``), score its own
  contacts with the defaults ``segsync score`` uses without a project, write the result parquet;
* ``objects``: the sync's compute, ``compute_rows`` over the same ledger with its contacts as
  ``Contact`` objects (id and e-mail), which also builds every contact's row of values to write;
  only up to ``--objects-up-to`` purchases (a dict per contact: slow and large at 10M);
* ``polars``: the polars reference (benchmarks/references.py) on the parquet file;
* ``segsync-pg`` (with ``--postgres``): ``segsync``'s process on the same ledger kept in a
  PostgreSQL state store (``--postgres auto`` starts a throwaway server; a URL names a server
  whose database to create it in). Its peak RSS is segsync's process, not the server's.

Printed per size: median wall time (min-max), peak RSS, the ratio to polars, each segsync
process's own phases (medians), whether segsync's RFM codes equal the reference's; then how the
times scale (the exponent of N) and the issue's target (10M purchases in <= 5 s, < 1.5 GiB).
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
from typing import Any

from benchmarks.datagen import AS_OF, CONTACTS_PER_PURCHASE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMPLEMENTATIONS = ("segsync", "objects", "polars")
PLATFORM, ACCOUNT = "bench", "a"
#: The issue's target: this many purchases in at most this many seconds and MiB.
TARGET = (10_000_000, 5.0, 1536.0)


# -- the data (built once per size, in a child process) --------------------------------------


def ledger_frame(purchases: int) -> Any:
    """datagen's purchases as the ledger's columns, straight from its numpy arrays (10M
    pydantic Purchase objects through chunk_frame would take minutes)."""
    import polars as pl

    from benchmarks.datagen import generate
    from segsync.sync.state.ledger import _SCHEMA, STATUS

    cols = generate(purchases)
    raw = pl.DataFrame({"contact_num": cols["contact"], "cents": cols["cents"], "day": cols["day"]})
    cents, whole = pl.col("cents"), pl.col("cents").abs()
    epoch = 719_163  # dt.date(1970, 1, 1).toordinal(): polars dates count from it
    frame = raw.select(
        purchase=pl.concat_str(pl.lit("d"), pl.int_range(pl.len()).cast(pl.String)),
        contact=pl.col("contact_num").cast(pl.String),
        contact_num=pl.col("contact_num"),
        amount=pl.concat_str(
            pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (whole // 100).cast(pl.String),
            pl.lit("."),
            (whole % 100).cast(pl.String).str.zfill(2),
        ),
        cents=cents,
        day=pl.col("day").cast(pl.Int32),
        currency=pl.lit(None, pl.String),
        closed_at=(pl.col("day") - epoch).cast(pl.Int32).cast(pl.Date).dt.to_string("%Y-%m-%d")
        + "T00:00:00+00:00",
        modified_at=pl.lit(None, pl.String),
        status=pl.when(cents < 0).then(pl.lit("refunded")).otherwise(pl.lit("won")).cast(STATUS),
    )
    assert frame.schema == pl.Schema(_SCHEMA), frame.schema
    return frame


def build_store(purchases: int, path: Path) -> None:
    """The store file, as base chunks of BASE_ROWS in one transaction (as compaction writes
    them); built under another name and renamed, so an interrupted build is never reused."""
    from segsync.sync.state import StateStore
    from segsync.sync.state.ledger import BASE_ROWS

    frame = ledger_frame(purchases)
    part = path.with_name(path.name + ".part")
    for stale in (part, Path(f"{part}-wal"), Path(f"{part}-shm")):
        stale.unlink(missing_ok=True)
    with StateStore(part) as store, store._tx() as db:
        for start in range(0, frame.height, BASE_ROWS):
            store.write_chunk(db, PLATFORM, ACCOUNT, frame.slice(start, BASE_ROWS), base=True)
    part.rename(path)


def prepare(purchases: int, folder: Path) -> None:
    from benchmarks.datagen import write

    folder.mkdir(parents=True, exist_ok=True)
    write(purchases, folder)
    store = folder / f"ledger-{purchases}.sqlite"
    if not store.exists():
        start = time.perf_counter()
        build_store(purchases, store)
        print(f"store built in {time.perf_counter() - start:.1f} s (not timed)")


# -- the timed processes ----------------------------------------------------------------------


class _Phases:
    """Seconds per phase, printed to stderr for the parent, which also learns from the two
    clock marks how long the process took to start (interpreter, numpy) and to exit."""

    def __init__(self) -> None:
        print(f"mark start {time.time():.4f}", file=sys.stderr)
        self.last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        print(f"phase {name} {now - self.last:.4f}", file=sys.stderr)
        self.last = now

    def finish(self) -> None:
        print(f"mark end {time.time():.4f}", file=sys.stderr)


def _defaults() -> tuple[Any, Any, Any]:
    """Config, packs and registry as ``segsync score`` builds them without a segsync.toml."""
    from segsync.plugins.manager import build_registry, make_plugin_manager
    from segsync.project.config import CONFIG_NAME, ProjectConfig
    from segsync.project.packs import load_packs

    config = ProjectConfig(path=Path.cwd() / CONFIG_NAME)
    registry = build_registry(make_plugin_manager(), platforms=False)
    return config, load_packs(config, registry), registry


def _target(text: str) -> Path | str:
    return text if text.startswith("postgresql://") else Path(text)


def prepare_pg(purchases: int, folder: Path, url: str) -> None:
    """Copy the SQLite store's ledger into the PostgreSQL database ``url`` (once; not timed)."""
    from segsync.sync.state import StateStore

    with StateStore(url) as target:
        if target.ledger_counts(PLATFORM, ACCOUNT)["chunks"]:
            return
        start = time.perf_counter()
        with StateStore(folder / f"ledger-{purchases}.sqlite") as source:
            target.copy_ledger(source, PLATFORM, ACCOUNT)
        print(f"PostgreSQL store filled in {time.perf_counter() - start:.1f} s (not timed)")


def run_segsync(store_path: Path | str, out: Path) -> None:
    phases = _Phases()
    from segsync.core.columns.compute import score
    from segsync.core.columns.ledger import PurchaseColumns
    from segsync.project.score import write_result
    from segsync.sync.state import StateStore

    config, packs, registry = _defaults()
    phases.done("setup")
    with StateStore(store_path) as store:  # open while scoring: a rejection reads its purchase id
        rows = store.ledger_rows(PLATFORM, ACCOUNT)
        assert not rows.odd, "datagen amounts all have cents"
        columns = PurchaseColumns(
            rows.contact, rows.cents, rows.day, rows.currency, rows.currencies, rows.label
        )
        phases.done("read")
        # no contacts file: the ledger's own contacts, no properties (score's default)
        scored = score(rows.contact_ids, columns, config=config, packs=packs, registry=registry, as_of=AS_OF)
        phases.done("score")
        write_result(scored, out)
        phases.done("write")
    phases.finish()
    print(f"scored {len(scored.ids):,} contacts, {len(scored.rejections)} rejections")


def run_objects(store_path: Path) -> None:
    phases = _Phases()
    from segsync.core.columns.objects import compute_rows
    from segsync.core.models import Contact
    from segsync.sync.state import StateStore

    config, packs, registry = _defaults()
    phases.done("setup")
    with StateStore(store_path) as store:
        rows = store.ledger_rows(PLATFORM, ACCOUNT)
        phases.done("read")
        # a sync pulls these from the CRM; built here, timed apart
        contacts = [Contact(id=c, email=f"c{c}@example.com") for c in rows.contact_ids]
        phases.done("contacts")
        desired = compute_rows(contacts, rows, config=config, packs=packs, registry=registry, as_of=AS_OF)
        phases.done("compute")
    phases.finish()
    print(f"desired values for {len(desired.values):,} contacts")


def agree(ours: Path, reference: Path) -> None:
    """Contacts, and how many have another RFM code than the reference's (or none), on stdout.
    The ids are compared as integers: the parquet file zero-pads them, the ledger does not."""
    import polars as pl

    def codes(path: Path) -> pl.DataFrame:
        frame = pl.read_parquet(path, columns=["contact_id", "rfm_score"])
        return frame.with_columns(pl.col("contact_id").cast(pl.Int64))

    a, b = codes(ours), codes(reference)
    joined = a.join(b, on="contact_id", how="full", suffix="_ref")
    differ = joined.filter(pl.col("rfm_score").ne_missing(pl.col("rfm_score_ref"))).height
    print(a.height, differ)


# -- the harness ------------------------------------------------------------------------------


def command(impl: str, store: Path | str, parquet: Path, out: Path) -> list[str]:
    own = [sys.executable, "-m", "benchmarks.ledger"]
    if impl in ("segsync", "segsync-pg"):
        return [*own, "segsync", str(store), str(out)]
    if impl == "objects":
        return [*own, "objects", str(store)]
    return [sys.executable, str(HERE / "references.py"), impl, str(parquet), str(out), AS_OF.isoformat()]


def _env() -> dict[str, str]:
    """The children import this checkout's segsync and benchmarks, whatever the venv points at."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, peak RSS (MiB) and the phases it printed, of one process."""
    with tempfile.TemporaryFile() as err:
        spawned, start = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        wall, reaped = time.perf_counter() - start, time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {text[-2000:]}")
    phases, marks = {}, {}
    for line in text.splitlines():
        kind, name, value = (line.split() + ["", "", ""])[:3]
        if kind == "phase":
            phases[name] = float(value)
        elif kind == "mark":
            marks[name] = float(value)
    if marks:
        phases = {"start": marks["start"] - spawned, **phases, "exit": reaped - marks["end"]}
    return wall, usage.ru_maxrss / 1024, phases


def _child(*args: object) -> str:
    """A helper process: the parent stays small, and a child's peak RSS counts its parent's."""
    cmd = [sys.executable, "-m", "benchmarks.ledger", *map(str, args)]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), check=True, capture_output=True, text=True)  # noqa: S603
    sys.stderr.write(done.stderr)
    return done.stdout


def run_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every round of one size: walls, peaks and phases per implementation."""
    built = _child("prepare", n, args.data).strip()
    store, parquet = args.data / f"ledger-{n}.sqlite", args.data / f"purchases-{n}.parquet"
    impls = [i for i in IMPLEMENTATIONS if i != "objects" or n <= args.objects_up_to]
    stores: dict[str, Path | str] = dict.fromkeys(impls, store)
    if args.pg_base:
        stores["segsync-pg"] = url = _pg_database(args.pg_base, n)
        filled = _child("prepare_pg", n, args.data, url).strip()
        built = "; ".join(p for p in (built, filled) if p)
        impls.append("segsync-pg")
    runs: dict[str, list[tuple[float, float, dict[str, float]]]] = {i: [] for i in impls}
    for r in range(args.rounds):
        for impl in impls if r % 2 == 0 else reversed(impls):
            runs[impl].append(measure(command(impl, stores[impl], parquet, work / f"{impl}.parquet"), work))
    contacts, differ = map(int, _child("agree", work / "segsync.parquet", work / "polars.parquet").split())
    if "segsync-pg" in runs:
        differ += int(_child("agree", work / "segsync-pg.parquet", work / "polars.parquet").split()[1])
    size = store.stat().st_size
    return {"runs": runs, "store": size, "built": built, "contacts": contacts, "differ": differ}


def report(n: int, got: dict[str, Any], objects_up_to: int) -> dict[str, tuple[float, float]]:
    """The size's table; (median wall, max peak) per implementation."""
    runs = got["runs"]
    summary = {i: (statistics.median(r[0] for r in rs), max(r[1] for r in rs)) for i, rs in runs.items()}
    ref = summary["polars"][0]
    contacts = round(n * CONTACTS_PER_PURCHASE)
    built = f"; {got['built']}" if got["built"] else ""
    print(f"\n{n:,} purchases ({contacts:,} contacts), store file {got['store'] / 2**20:,.0f} MiB{built}:")
    print(f"  {'':10} {'wall (median)':>14} {'min-max':>14} {'peak RSS':>10} {'÷ polars':>9}")
    for impl, rs in runs.items():
        med, peak = summary[impl]
        lo, hi = min(r[0] for r in rs), max(r[0] for r in rs)
        print(f"  {impl:10} {med:>12.2f} s {lo:>6.2f}-{hi:<6.2f} {peak:>7.0f} MiB {med / ref:>8.2f}×")
    if "objects" not in runs:
        print(f"  objects  not run: over --objects-up-to {objects_up_to:,} purchases")
    for impl in ("segsync", "segsync-pg", "objects"):
        if impl in runs:
            phases = {k: statistics.median(r[2][k] for r in runs[impl]) for k in runs[impl][0][2]}
            parts = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
            print(f"  {impl} phases (medians, s): {parts}")
    same = "all equal" if not got["differ"] else f"{got['differ']:,} differ"
    print(f"  segsync's RFM codes vs polars': {same} ({got['contacts']:,} contacts)")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--objects-up-to", type=int, default=1_000_000, help="largest size for 'objects'")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "segsync-bench-ledger")
    parser.add_argument(
        "--postgres",
        default=None,
        help="also from a PostgreSQL store: auto (a throwaway server) or a server URL",
    )
    args = parser.parse_args(argv)
    args.data = args.data.resolve()
    server = None
    args.pg_base = None
    if args.postgres == "auto":
        from segsync.testing.postgres import TempPostgres

        server = TempPostgres().start()
        args.pg_base = server.base
    elif args.postgres:
        args.pg_base = args.postgres
    try:
        _main(args)
    finally:
        if server is not None:
            server.stop()


def _pg_database(base: str, purchases: int) -> str:
    """The database of this size's ledger on the server ``base`` (made if missing)."""
    import psycopg

    name = f"segsync_bench_ledger_{purchases}"
    with psycopg.connect(base, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f"CREATE DATABASE {name}")
    return f"{base.rpartition('/')[0]}/{name}"


def _main(args: argparse.Namespace) -> None:
    python = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, Python {python}; as of {AS_OF}; {args.rounds} rounds, medians")
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for n in args.purchases:
            results[n] = report(n, run_size(n, args, Path(work)), args.objects_up_to)
    sizes = sorted(results)
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        for impl in ("segsync", "polars"):
            ratio = results[b][impl][0] / results[a][impl][0]
            exponent = math.log(ratio) / math.log(b / a)
            print(f"\nscaling, {impl}: {a:,} → {b:,} purchases: time × {ratio:.1f}, exponent {exponent:.2f}")
    n, seconds, mib = TARGET
    if n in results:
        wall, peak = results[n]["segsync"]
        met = "met" if wall <= seconds and peak < mib else "NOT met"
        print(f"\ntarget, {n:,} purchases in <= {seconds:.0f} s and < {mib / 1024:.1f} GiB: {met}", end="")
        print(f" ({wall:.2f} s, {peak:,.0f} MiB)")


CHILDREN = {
    "prepare": lambda a: prepare(int(a[0]), Path(a[1])),
    "prepare_pg": lambda a: prepare_pg(int(a[0]), Path(a[1]), a[2]),
    "segsync": lambda a: run_segsync(_target(a[0]), Path(a[1])),
    "objects": lambda a: run_objects(Path(a[0])),
    "agree": lambda a: agree(Path(a[0]), Path(a[1])),
}

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        CHILDREN[sys.argv[1]](sys.argv[2:])
    else:
        main()
