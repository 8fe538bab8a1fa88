"""Whether a sync is bounded by the CRM's rate limit or by segsync.

Run: .venv/bin/python benchmarks/bench_sync.py [--platform hubspot|brevo] [--contacts N]
Runs six syncs of the demo store against the platform's sandbox (real SDK over loopback
HTTP) with simulated time: a first sync, a no-change resync, a resync after one new purchase
added to the sandbox (a won deal for one seeded buyer, as a CRM user would record it), one
more no-change resync, a resync after another new purchase, and one after 1% of the contacts
bought (after each run with changes, the fewest calls those changes can take: the last no-change
run's reads, one write per batch of changed contacts, one membership call per list changed).
The purchase cursor overlaps the newest change it saw by a second, so where the seed stamps many
deals with one instant (the HubSpot sandbox stamps every seeded deal with the seeding time), the
resyncs read those deals again until a later change moves the cursor past them: the fourth and
fifth runs are the steady state.
Between runs the simulated clock moves on by ``--gap`` seconds (an hour: syncs run from a
schedule, not back to back), so a run does not start with the last one's rate windows still
full. It prints where segsync and the plugin were imported from: an editable install imports
the plugins from its own checkout, so to measure another worktree put its plugin folders on
PYTHONPATH too (``WT:WT/plugins/segsync-hubspot:WT/plugins/segsync-brevo``).

For each it prints: API calls (every job's, when the rate limit paused the sync and it was
run again) and write calls, the time the rate limits impose (simulated seconds spent waiting
for windows), the CPU time of the syncing thread (segsync plus the vendor SDK's parsing: what
a real sync spends besides waiting), the wall time, which also covers the in-process sandbox
serving every call; then the records pulled and written (the jobs' reports), the calls by
operation (the platform runner's count) and the requests the sandbox saw per rate bucket.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import segsync
import segsync.project.connect as project_connect
from segsync.core.report import JobInfo, SegmentChange, SyncReport
from segsync.errors import SyncPaused
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig, load_config
from segsync.project.run import sync_project
from segsync.sandbox import SandboxBase, SeedData, demo_dataset
from segsync.sync.platform import Platform
from segsync.sync.runner import SimulatedClock

AS_OF = dt.date(2026, 11, 1)
#: The purchases the third and fifth runs find: won deals of this amount, closed the day before AS_OF.
NEW_AMOUNT = Decimal("59.90")
NEW_CLOSED_AT = dt.datetime.combine(AS_OF - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)


@contextmanager
def platforms_connected() -> Iterator[list[Platform]]:
    """Every platform ``sync_project`` connects while inside, so their runners' stats can be
    read after each job (``sync_project`` looks ``connect`` up in its module on every call)."""
    connected: list[Platform] = []
    original: Callable[..., Platform] = project_connect.connect

    def connect(*args: Any, **kwargs: Any) -> Platform:
        platform = original(*args, **kwargs)
        connected.append(platform)
        return platform

    project_connect.connect = connect
    try:
        yield connected
    finally:
        project_connect.connect = original


class Reports:
    """Hooks that keep every job's report, a paused job's included."""

    def __init__(self) -> None:
        self.reports: list[SyncReport] = []

    def sync_started(self, job: JobInfo) -> None:
        pass

    def segment_changed(self, change: SegmentChange) -> None:
        pass

    def sync_finished(self, report: SyncReport) -> None:
        self.reports.append(report)

    def total(self, since: int, name: str) -> int:
        return sum(int(getattr(r, name)) for r in self.reports[since:])


def buyers(data: SeedData, n: int) -> list[str]:
    """``n`` seeded contacts with an e-mail and won purchases, none of them broken: who buy again."""
    won = Counter(p.contact_id for p in data.purchases if p.stage == "won" and p.closedate and p.amount)
    broken = {p.contact_id for p in data.purchases if p.currency != "USD" or not p.closedate}
    found = [
        c.id for c in data.contacts if c.email and "+" not in c.email and won[c.id] and c.id not in broken
    ]
    if len(found) < n:
        raise SystemExit(f"the demo store has {len(found)} clean buyers, not {n}")
    return found[:n]


@dataclass
class Bench:
    """The sandbox, the project pointed at it, and what every job connected and reported."""

    cls: type[Platform]
    config: ProjectConfig
    registry: Registry
    env: dict[str, str]
    clock: SimulatedClock
    sandbox: SandboxBase
    connected: list[Platform]
    hooks: Reports = field(default_factory=Reports)

    #: The calls of the last no-change run: what any incremental sync reads at least.
    idle_calls: int | None = None

    def run(self, label: str) -> None:
        """Sync until a job finishes (a paused one is run again when its budget refills), and print it."""
        sandbox, clock, hooks = self.sandbox, self.clock, self.hooks
        buckets0, limited0 = dict(sandbox.calls_by_bucket), sandbox.rate_limited
        first_platform, first_report = len(self.connected), len(hooks.reports)
        wall0, cpu0, sim0, jobs = time.perf_counter(), time.thread_time(), clock.now(), 0
        while True:
            jobs += 1
            try:
                result = sync_project(
                    self.config,
                    self.cls.name,
                    registry=self.registry,
                    as_of=AS_OF,
                    env=self.env,
                    clock=clock,
                    # the CRM's time: simulated waits move it, and the state store follows it
                    wall_clock=sandbox,
                    hooks=hooks,
                )
                break
            except SyncPaused as paused:
                clock.advance(paused.resume_after)
        wall = time.perf_counter() - wall0
        cpu = time.thread_time() - cpu0
        simulated = clock.now() - sim0
        stats = [p.runner.stats for p in self.connected[first_platform:]]
        assert len(stats) == jobs, "a job's platform was not seen"
        calls = sum(s.calls for s in stats)
        last = f" (the last {stats[-1].calls:,})" if jobs > 1 else ""
        share = f" ({cpu / simulated:.0%} of it)" if simulated >= 1 else ""
        print(
            f"{label}: {jobs} job(s) making {calls:,} API calls{last}, "
            f"{sum(s.writes for s in stats):,} of them writes; "
            f"rate limits impose {simulated:,.0f} s ({simulated / 3600:.2f} h); "
            f"segsync + SDK CPU {cpu:,.1f} s{share}; "
            f"wall {wall:,.1f} s with the sandbox"
        )
        report = hooks.reports[-1]
        print(
            f"  records: the last job pulled {report.contacts_pulled:,} contacts and "
            f"{report.purchases_pulled:,} purchases; "
            f"wrote {hooks.total(first_report, 'contacts_written'):,} contacts, "
            f"+{hooks.total(first_report, 'members_added'):,}/"
            f"-{hooks.total(first_report, 'members_removed'):,} list members, "
            f"{hooks.total(first_report, 'failed_records'):,} failed; "
            f"{sum(s.retries for s in stats):,} retries, "
            f"{sum(s.rate_limited for s in stats):,} answers rate limited"
        )
        per_operation: Counter[str] = sum((s.per_operation for s in stats), Counter())
        print(f"  calls by operation: {_counts(per_operation) or 'none'}")
        self._minimum(label, calls, result.plan.summary, report.contacts_written)
        seen = Counter(sandbox.calls_by_bucket) - Counter(buckets0)
        print(
            f"  sandbox requests by bucket: {_counts(seen) or 'none'}, "
            f"{sandbox.rate_limited - limited0:,} answered 429"
        )

    def _minimum(self, label: str, calls: int, summary: Any, written: int) -> None:
        """After a no-change run, remember its calls; after changes, print the fewest calls they
        can take: that run's reads, one write per ``write_batch`` changed contacts and one
        membership call per list whose members change (HubSpot's add-and-remove does both)."""
        if label.startswith("no-change"):
            self.idle_calls = calls
            return
        if self.idle_calls is None or label == "first sync":
            return
        batch = self.connected[-1].limits.write_batch
        lists = len({k for k, n in (*summary.list_adds.items(), *summary.list_removes.items()) if n})
        least = self.idle_calls + -(-written // batch) + lists
        print(
            f"  fewest calls for these changes: {least:,} (the no-change run's {self.idle_calls} reads, "
            f"{-(-written // batch)} write batch(es), {lists} list(s) changed); made {calls / least:.2f}×"
        )


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.most_common())


#: The runs, in order: a label, and how many contacts buy before it (a count, or a share).
RUNS = (
    ("first sync", 0),
    ("no-change resync", 0),
    ("one new purchase", 1),
    ("no-change resync after it", 0),
    ("another new purchase", 1),
    ("1% of contacts buy", 0.01),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="hubspot")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--gap", type=float, default=3600.0, help="simulated seconds between runs")
    args = parser.parse_args()
    registry = build_registry(make_plugin_manager())
    cls = registry.platform(args.platform)
    sandbox_cls = cls.sandbox()
    assert sandbox_cls is not None
    clock = SimulatedClock()
    sandbox = sandbox_cls(secret="bench-secret", clock=clock)
    assert isinstance(sandbox, SandboxBase)
    data = demo_dataset(AS_OF, contacts=args.contacts)
    sandbox.seed(data)
    sandbox.start()
    folder = Path(tempfile.mkdtemp(prefix="segsync-bench-"))
    toml = '[segments]\npacks = ["rfm-standard", "lifecycle"]\n'
    toml += f'[platforms.{cls.name}]\nbase_url = "{sandbox.base_url}"\n'
    (folder / "segsync.toml").write_text(toml, encoding="utf-8")
    config = load_config(folder / "segsync.toml")
    env = {**os.environ, cls.secret_env: "bench-secret"}
    pool = buyers(data, max(1, args.contacts // 100))
    print(
        f"{cls.display_name}: {len(data.contacts):,} contacts, {len(data.purchases):,} deals; "
        f"{args.gap:,.0f} simulated s between runs"
    )
    # an editable install imports the plugins from its own checkout, whatever PYTHONPATH says of segsync
    plugin = Path(inspect.getfile(cls)).parent
    print(f"segsync from {Path(segsync.__file__).parent}, the {cls.name} plugin from {plugin}")
    try:
        with platforms_connected() as connected:
            bench = Bench(cls, config, registry, env, clock, sandbox, connected)
            for n, (label, share) in enumerate(RUNS):
                if n:
                    clock.advance(args.gap)
                count = int(share) if share >= 1 or not share else max(1, round(share * args.contacts))
                deals = [sandbox.add_purchase(buyer, NEW_AMOUNT, NEW_CLOSED_AT) for buyer in pool[:count]]
                if deals:
                    closed = f"{NEW_CLOSED_AT:%Y-%m-%d}"
                    print(
                        f"(added {len(deals)} deal(s) of {NEW_AMOUNT}, closed {closed}, the last {deals[-1]})"
                    )
                bench.run(label)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
