"""Whether a sync is bounded by the CRM's rate limit or by segsync.

Run: .venv/bin/python benchmarks/bench_sync.py [--platform hubspot|brevo] [--contacts N]
Runs a first sync and a no-change resync of the demo store against the platform's sandbox
(real SDK over loopback HTTP) with simulated time, and prints: API calls, the time the rate
limits impose (simulated seconds spent waiting for windows), the CPU time of the syncing
thread (segsync plus the vendor SDK's parsing: what a real sync spends besides waiting), and
the wall time, which also covers the in-process sandbox serving every call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from segsync.errors import SyncPaused
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.config import load_config
from segsync.project.run import sync_project
from segsync.sandbox import demo_dataset
from segsync.sync.runner import SimulatedClock

AS_OF = dt.date(2026, 11, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="hubspot")
    parser.add_argument("--contacts", type=int, default=20_000)
    args = parser.parse_args()
    registry = build_registry(make_plugin_manager())
    cls = registry.platform(args.platform)
    sandbox_cls = cls.sandbox()
    assert sandbox_cls is not None
    clock = SimulatedClock()
    sandbox = sandbox_cls(secret="bench-secret", clock=clock)
    data = demo_dataset(AS_OF, contacts=args.contacts)
    sandbox.seed(data)
    sandbox.start()
    folder = Path(tempfile.mkdtemp(prefix="segsync-bench-"))
    toml = '[segments]\npacks = ["rfm-standard", "lifecycle"]\n'
    toml += f'[platforms.{cls.name}]\nbase_url = "{sandbox.base_url}"\n'
    (folder / "segsync.toml").write_text(toml, encoding="utf-8")
    config = load_config(folder / "segsync.toml")
    env = {**os.environ, cls.secret_env: "bench-secret"}
    print(f"{cls.display_name}: {len(data.contacts):,} contacts, {len(data.purchases):,} deals")
    try:
        for label in ("first sync", "no-change resync"):
            wall0, cpu0, sim0, calls, jobs = time.perf_counter(), time.thread_time(), clock.now(), 0, 0
            while True:
                jobs += 1
                try:
                    result = sync_project(
                        config, cls.name, registry=registry, as_of=AS_OF, env=env, clock=clock
                    )
                    calls += result.report.calls
                    break
                except SyncPaused as paused:
                    clock.advance(paused.resume_after)
            wall = time.perf_counter() - wall0
            cpu = time.thread_time() - cpu0
            simulated = clock.now() - sim0
            print(
                f"{label}: {jobs} job(s), the last making {calls:,} API calls; "
                f"rate limits impose {simulated:,.0f} s "
                f"({simulated / 3600:.2f} h); segsync + SDK CPU {cpu:,.1f} s "
                f"({cpu / max(simulated, 1e-9):.0%} of it); wall {wall:,.1f} s with the sandbox"
            )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
