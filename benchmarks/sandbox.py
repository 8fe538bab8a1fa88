"""How big a store the sandboxes hold, and how many simple requests a second they answer.

    python -m benchmarks sandbox [--contacts 100000] [--requests 4000] [--threads 1 4]

For each platform's sandbox (in this process, as tests and the demo run it), it seeds the demo
store at ``--contacts`` contacts (about 4.3 deals each) and prints the seeding time and the
process's peak RSS; then, with the rate limits lifted, it sends ``--requests`` simple requests
(one-contact pages: HubSpot ``GET /crm/v3/objects/contacts?limit=1``, Brevo ``GET
/v3/contacts?limit=1``) over keep-alive connections from each number of ``--threads`` and prints
requests a second. The issue's target: at least 1,000 a second, so the sandbox is never what
bounds a sync. Separate processes per platform would be fairer to the second one: run with
``--platform`` to measure one alone.
"""

from __future__ import annotations

import argparse
import http.client
import resource
import threading
import time
from typing import Any

from segsync.sandbox import SandboxBase, demo_dataset
from segsync.sync.runner import SimulatedClock

AS_OF_TEXT = "2026-11-01"


def _sandbox(platform: str, contacts: int) -> tuple[SandboxBase, str, dict[str, str], float]:
    """A started sandbox seeded at ``contacts``, its simple request, headers, seeding seconds."""
    import datetime as dt

    data = demo_dataset(dt.date.fromisoformat(AS_OF_TEXT), contacts=contacts)
    clock = SimulatedClock()  # rate windows on a clock that never moves: lifted below
    if platform == "hubspot":
        from segsync_hubspot.sandbox import HubSpotSandbox

        sandbox: Any = HubSpotSandbox(secret="bench-secret", clock=clock)
        path, headers = "/crm/v3/objects/contacts?limit=1", {"Authorization": "Bearer bench-secret"}
    else:
        from segsync_brevo.sandbox import BrevoSandbox

        sandbox = BrevoSandbox(secret="bench-secret", clock=clock)
        path, headers = "/contacts?limit=1", {"api-key": "bench-secret"}  # base_url ends in /v3
    # every window lifted: the requests a second measured are the emulator's own
    windows = sandbox.rate_windows()
    sandbox.rate_windows = lambda: {b: [(10**12, seconds) for _, seconds in ws] for b, ws in windows.items()}
    sandbox.apply_rate_windows()
    started = time.perf_counter()
    sandbox.seed(data)
    seeded = time.perf_counter() - started
    sandbox.start()
    return sandbox, path, headers, seeded


def _requests_per_second(
    sandbox: SandboxBase, path: str, headers: dict[str, str], total: int, threads: int
) -> float:
    """Requests a second from ``threads`` keep-alive clients in another process (clients in this
    one would take the sandbox's interpreter lock from it)."""
    import json
    import subprocess
    import sys

    job = json.dumps(
        {"url": sandbox.base_url, "path": path, "headers": headers, "total": total, "threads": threads}
    )
    out = subprocess.run(  # noqa: S603 - this interpreter running this module
        [sys.executable, "-m", "benchmarks.sandbox", "--client", job],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the client process failed: {out.stderr.strip()[-400:]}")
    return float(out.stdout.strip())


def _client(job_text: str) -> None:
    """The client process: send the requests, print requests a second."""
    import json
    import urllib.parse

    job = json.loads(job_text)
    parts = urllib.parse.urlsplit(job["url"])
    host, port, prefix = parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/")
    each = job["total"] // job["threads"]
    done: list[int] = []

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        ok = 0
        for _ in range(each):
            conn.request("GET", prefix + job["path"], headers=job["headers"])
            resp = conn.getresponse()
            resp.read()
            ok += resp.status == 200
        conn.close()
        done.append(ok)

    workers = [threading.Thread(target=client) for _ in range(job["threads"])]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if sum(done) != each * len(workers):
        raise SystemExit(f"{each * len(workers) - sum(done)} requests failed or were not answered 200")
    print(sum(done) / elapsed)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("hubspot", "brevo"), action="append")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        _client(args.client)
        return

    def run(platform: str) -> None:
        sandbox, path, headers, seeded = _sandbox(platform, args.contacts)
        try:
            print(
                f"{platform}: seeded {args.contacts:,} contacts and their deals in {seeded:.1f} s; "
                f"peak RSS so far {_peak_rss_mib():,.0f} MiB"
            )
            _requests_per_second(sandbox, path, headers, 200, 1)  # warm up
            for threads in args.threads:
                rate = _requests_per_second(sandbox, path, headers, args.requests, threads)
                verdict = "meets" if rate >= 1000 else "misses"
                print(f"  {threads} client thread(s): {rate:,.0f} requests/s ({verdict} 1,000/s)")
        finally:
            sandbox.stop()

    for platform in args.platform or ["hubspot", "brevo"]:
        run(platform)


if __name__ == "__main__":
    main()
