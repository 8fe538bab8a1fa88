"""A first HubSpot sync in real time, at HubSpot's real rate limit, against a sandbox in its own
process: is the sync bound by the limit (wall ≤ 1.15 × calls ÷ allowed rate), does it make the
fewest calls crm-api-facts §1.12 counts (±2%), and does segsync stay under 1 GiB?

    python -m benchmarks first_sync [--contacts 100000] [--plan professional] [--concurrency 4]

It starts ``segsync sandbox hubspot --seed demo`` (the demo store at ``--contacts``, about 4.3
deals each) as one process and ``segsync sync`` against it as another, on the real clock, and
prints: the wall time of the sync, the calls it made (the job record), the time the rate limit
allows for them (calls ÷ requests a second: 190 per 10 s on a Professional portal; search calls
have their own limit and are left out of the bound), segsync's peak RSS, and §1.12's minimum:
``ceil(N/100)`` contact pages + ``ceil(D/100)`` deal pages + ``ceil(won/1000)`` association reads
+ ``ceil(K/100)`` property writes + one add-and-remove per ``membership_batch`` members of each
list + the one-time setup (account, pipelines, properties, group, one lookup and one create per
list). It takes calls ÷ 19 seconds at least: about 8 minutes at 100,000 contacts.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "pat-bench-first-sync"  # noqa: S105 - the sandbox's own made-up credential
PER_TEN_SECONDS = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}


def _segsync() -> list[str]:
    return [sys.executable, "-m", "segsync.cli"]  # this interpreter's segsync


def _start_sandbox(contacts: int, plan: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [*_segsync(), "sandbox", "hubspot", "--seed", "demo", "--contacts", str(contacts), "--plan", plan]
    proc = subprocess.Popen(  # noqa: S603 - this interpreter running segsync
        [*cmd, "--token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            return proc, line.split("listening on", 1)[1].strip()
    raise SystemExit(f"the sandbox did not start (exit {proc.wait()})")


def _list_sizes(url: str, folder: Path) -> list[int]:
    """Members of each list segsync made, as the sandbox reports them (``size``)."""
    import json
    import urllib.request

    from segsync.sync.state import StateStore

    with StateStore(folder / ".segsync" / "state.db") as store:
        (platform, account), *_ = [(j.platform, j.account) for j in store.recent_jobs(1)]
        ids = [remote for remote, _ in store.remote_ids(platform, account, "list").values()]
    sizes = []
    for list_id in ids:
        request = urllib.request.Request(  # noqa: S310 - the loopback sandbox's http URL
            f"{url}/crm/v3/lists/{list_id}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request) as answer:  # noqa: S310 - the loopback sandbox
            sizes.append(int(json.load(answer)["list"].get("size") or 0))
    return sizes


def _minimum(url: str, folder: Path, contacts: int, written: int) -> tuple[int, str]:
    """§1.12's count for the store the sandbox seeded (``segsync sandbox`` seeds it as of today)."""
    import datetime as dt

    from segsync.sandbox import demo_dataset

    data = demo_dataset(dt.date.today(), contacts=contacts)
    won = sum(p.stage == "won" for p in data.purchases)
    sizes = _list_sizes(url, folder)
    parts = {
        "contact pages": math.ceil(len(data.contacts) / 100),
        "deal pages": math.ceil(len(data.purchases) / 100),
        "association reads": math.ceil(won / 1000),
        "property writes": math.ceil(written / 100),
        "membership calls": sum(math.ceil(n / 100) for n in sizes),
        "setup": 6 + 2 * len(sizes),
    }
    text = ", ".join(f"{k} {v:,}" for k, v in parts.items())
    return sum(parts.values()), text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--plan", choices=sorted(PER_TEN_SECONDS), default="professional")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="segsync-first-sync-"))
    started = time.perf_counter()
    sandbox, url = _start_sandbox(args.contacts, args.plan)
    print(f"sandbox at {url}: {args.contacts:,} contacts seeded in {time.perf_counter() - started:.0f} s")
    try:
        (folder / "segsync.toml").write_text(
            f"[project]\nconcurrency = {args.concurrency}\n"
            '[segments]\npacks = ["rfm-standard", "lifecycle"]\n'
            f'[platforms.hubspot]\nbase_url = "{url}"\n',
            encoding="utf-8",
        )
        env = {**os.environ, "SEGSYNC_HUBSPOT_TOKEN": TOKEN}
        t0 = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - this interpreter running segsync
            [*_segsync(), "sync"], cwd=folder, env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if done.returncode != 0:
            raise SystemExit(
                f"segsync sync exited {done.returncode}: {done.stdout[-600:]}{done.stderr[-600:]}"
            )
        from segsync.sync.state import StateStore

        with StateStore(folder / ".segsync" / "state.db") as store:
            (job,) = store.recent_jobs(1)
        calls = job.calls
        bound = calls / (PER_TEN_SECONDS[args.plan] / 10)
        report = job.report
        assert report is not None
        least, parts = _minimum(url, folder, args.contacts, report.contacts_written)
        print(f"first sync: {calls:,} calls in {wall:,.1f} s wall; segsync peak RSS {peak:,.0f} MiB")
        ratio = wall / bound
        print(f"  the rate limit allows them in {bound:,.1f} s: wall is {ratio:.2f}× that (target ≤ 1.15×)")
        print(f"  §1.12's minimum: {least:,} ({parts}); made {calls / least:.3f}× (target 1 ± 0.02)")
        print(f"  peak RSS target < 1,024 MiB: {'met' if peak < 1024 else 'NOT met'}")
    finally:
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    main()
