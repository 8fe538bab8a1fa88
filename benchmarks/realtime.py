"""From a purchase to the buyer's RFM fields through ``segsync serve``, in real time: how long,
how many API calls; and what a burst of webhook events costs.

    python -m benchmarks realtime [--contacts 100000] [--purchases 100] [--burst 10000]

Three processes on the real clock: ``segsync sandbox hubspot --seed demo`` at HubSpot's real
limits (Professional), sending v3-signed webhooks for deals and for contact ``country`` changes
(the subscriptions docs/operations.md recommends); ``segsync serve`` receiving them; and this
one, playing the store. After a first ``segsync sync`` and a second (the seed's open deals,
modified in one instant just before the first, are read once more by it; neither is timed):

* **purchases**: one at a time, a won deal is created through the API (``POST
  /crm/v3/objects/deals`` with the contact inline), and the clock runs until ``serve`` prints the
  end of the sync that wrote it; the buyer's ``segsync_order_count`` is then read back to check.
  Printed: p50 and p99 of that time (target p50 ≤ 2 s) and the calls of each sync against the
  fewest it can take (the deal search, the contact search, one association read, one
  property write, the list changes and the account and list checks every job makes).
* **burst**: ``--burst`` events (``deal.propertyChange`` on existing deals), 100 per delivery from
  four threads, as fast as ``serve`` takes them. Printed: syncs triggered, their calls, and the
  time from the first delivery until no event waits and no sync runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TOKEN = "pat-bench-realtime"  # noqa: S105 - the sandbox's own made-up credential
APP_SECRET = "bench-app-secret"  # noqa: S105
LINE = re.compile(r"job (\d+) succeeded in ([\d.]+) s \((\w+)\):.*?wrote (\d+) contact.*?(\d+) API call")


def _segsync() -> list[str]:
    return [sys.executable, "-m", "segsync.cli"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], cwd: Path, env: dict[str, str], ready: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(  # noqa: S603 - this interpreter running segsync
        [*_segsync(), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if ready in line:
            return proc, line
    raise SystemExit(f"{args[0]} did not start (exit {proc.wait()})")


class Lines:
    """The sync lines ``serve`` prints, with the time each was read."""

    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.log = log
        self.seen: list[tuple[float, re.Match[str]]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with self.log.open("a", encoding="utf-8") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                self._line(line)

    def _line(self, line: str) -> None:
        m = LINE.search(line)
        if m:
            with self._cond:
                self.seen.append((time.perf_counter(), m))
                self._cond.notify_all()

    def after(self, t0: float, timeout: float = 120.0) -> tuple[float, re.Match[str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next(((t, m) for t, m in self.seen if t > t0), None)
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = self.log.read_text(encoding="utf-8")[-3000:]
                    raise SystemExit(f"no sync ended in {timeout:.0f} s; serve printed:\n{tail}")
                self._cond.wait(left)


def _api(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - the loopback sandbox
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as answer:  # noqa: S310
        return json.load(answer)


def _order_count(sandbox: str, contact: str) -> int:
    got = _api(f"{sandbox}/crm/v3/objects/contacts/{contact}?properties=segsync_order_count")
    return int(got["properties"].get("segsync_order_count") or 0)


def _sell(sandbox: str, contact: str) -> str:
    body = {
        "properties": {
            "dealname": "Web order",
            "amount": "42.00",
            "dealstage": "closedwon",
            "pipeline": "default",
            "closedate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "associations": [
            {
                "to": {"id": contact},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
            }
        ],
    }
    return str(_api(f"{sandbox}/crm/v3/objects/deals", "POST", body)["id"])


def _purchases(
    sandbox: str, lines: Lines, contacts: list[str], n: int, interval: float
) -> tuple[list[float], list[int]]:
    times, calls = [], []
    for contact in random.Random(7).sample(contacts, n):
        time.sleep(interval)  # purchases arrive at a pace the portal's rate limit can serve
        before = _order_count(sandbox, contact)
        _sell(sandbox, contact)
        t0 = time.perf_counter()
        while True:
            at, m = lines.after(t0)
            if _order_count(sandbox, contact) == before + 1:
                break
            t0 = at  # a sync that began before the event: wait for the next
        times.append(at - t0 if at > t0 else 0.0)
        calls.append(int(m[5]))
        if os.environ.get("BENCH_VERBOSE"):
            print(f"    {times[-1]:.2f} s: {m[0]}")
    return times, calls


def _burst(serve: str, lines: Lines, deal_ids: list[str], events: int) -> tuple[int, int, float]:
    from segsync_hubspot.sandbox import HubSpotSandbox
    from segsync_hubspot.webhooks import signature_v3

    url = f"{serve}/webhooks/hubspot"
    portal = int(HubSpotSandbox.derive_account_id(TOKEN))
    start_syncs = len(lines.seen)

    def deliver(first: int) -> None:
        batch = [
            {
                "eventId": 10**9 + first + i,
                "subscriptionId": 1,
                "portalId": portal,
                "appId": 1,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "deal.propertyChange",
                "attemptNumber": 0,
                "objectId": int(deal_ids[(first + i) % len(deal_ids)]),
                "propertyName": "amount",
                "propertyValue": "42.00",
            }
            for i in range(min(100, events - first))
        ]
        body = json.dumps(batch).encode()
        stamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature_v3(APP_SECRET, "POST", url, body, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
        }
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=30) as answer:  # noqa: S310
            assert answer.status == 200

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(deliver, range(0, events, 100)))
    delivered = time.perf_counter() - t0
    while True:  # quiet: nothing waits, and the last sync has ended
        health = json.load(urllib.request.urlopen(f"{serve}/healthz", timeout=10))  # noqa: S310
        if not health["pending_events"]["hubspot"]:
            break
        time.sleep(0.05)
    quiet = (lines.seen[-1][0] if len(lines.seen) > start_syncs else time.perf_counter()) - t0
    runs = lines.seen[start_syncs:]
    print(f"  {events:,} events delivered in {delivered:.1f} s ({events / delivered:,.0f} events/s)")
    return len(runs), sum(int(m[5]) for _, m in runs), quiet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--debounce", default="0.2s")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between one purchase's fields and the next purchase (the sandbox counts the "
        "store's calls in segsync's 190-per-10-s window, as if one app made both)",
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="segsync-realtime-"))
    serve_port = _port()
    env = {**os.environ, "SEGSYNC_HUBSPOT_TOKEN": TOKEN, "SEGSYNC_HUBSPOT_APP_SECRET": APP_SECRET}
    started = time.perf_counter()
    hook = f"http://127.0.0.1:{serve_port}/webhooks/hubspot"
    sandbox_args = [
        "sandbox",
        "hubspot",
        "--seed",
        "demo",
        "--contacts",
        str(args.contacts),
        "--token",
        TOKEN,
    ]
    sandbox_args += [
        "--plan",
        "professional",
        "--option",
        f"webhook_url={hook}",
        "--option",
        f"app_secret={APP_SECRET}",
    ]
    sandbox_args += ["--option", "webhook_properties=country"]
    sandbox, line = _spawn(sandbox_args, folder, env, "listening on")
    url = line.split("listening on", 1)[1].strip()
    print(f"sandbox at {url}: {args.contacts:,} contacts seeded in {time.perf_counter() - started:.0f} s")
    serve = None
    try:
        (folder / "segsync.toml").write_text(f'[platforms.hubspot]\nbase_url = "{url}"\n', encoding="utf-8")
        t0 = time.perf_counter()
        subprocess.run([*_segsync(), "sync", "-q"], cwd=folder, env=env, check=True, capture_output=True)  # noqa: S603
        print(f"first sync: {time.perf_counter() - t0:,.0f} s")
        # The seed's open deals were all modified at one instant, minutes before the first
        # (full) pull began: the next pull reads them once (a bulk import's walk). Not timed.
        t0 = time.perf_counter()
        subprocess.run([*_segsync(), "sync", "-q"], cwd=folder, env=env, check=True, capture_output=True)  # noqa: S603
        print(f"second sync (the seed's open deals read once): {time.perf_counter() - t0:,.0f} s")
        time.sleep(10)  # let the 10-second window the syncs filled empty
        serve, _ = _spawn(
            ["-v", "serve", "--port", str(serve_port), "--every", "off", "--debounce", args.debounce],
            folder,
            env,
            "listening on",
        )
        lines = Lines(serve, folder / "serve.log")
        contacts = [str(1000 + i) for i in range(args.contacts)]
        times, calls = _purchases(url, lines, contacts, args.purchases, args.interval)
        p50 = statistics.median(times)
        p99 = sorted(times)[max(0, round(0.99 * len(times)) - 1)]
        print(
            f"purchases through serve ({args.purchases}, one at a time, {args.interval:g} s apart, "
            f"debounce {args.debounce}):"
        )
        print(
            f"  deal created -> buyer's fields written: p50 {p50:.2f} s, p99 {p99:.2f} s (target p50 ≤ 2 s)"
        )
        print(f"  API calls per sync: median {statistics.median(calls):.0f}, max {max(calls)}")
        deals = [str(900_001 + i) for i in range(args.purchases)]
        syncs, burst_calls, quiet = _burst(f"http://127.0.0.1:{serve_port}", lines, deals, args.burst)
        print(
            f"burst: {syncs} sync(s) triggered, {burst_calls} API calls, "
            f"quiet {quiet:.1f} s after the first delivery"
        )
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(60)
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    main()
