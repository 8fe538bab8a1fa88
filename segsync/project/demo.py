"""``segsync demo``: the whole loop on a platform's sandbox, through the real SDK over HTTP.

It seeds a realistic store, syncs, prints the segments and the RFM grid, syncs again (nothing
to write), adds one purchase and shows that buyer's fields and lists change on the next sync.
Time is simulated: rate-limit waits are real waits on the sandbox's clock but cost no wall time,
and a spent hourly budget (Brevo) is fast-forwarded the way a later cron run would resume.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segsync.errors import ConfigError, SyncPaused
from segsync.plugins.manager import Hooks, build_registry, make_plugin_manager
from segsync.project.app import render_report
from segsync.project.output import Progress, human_duration, money, table
from segsync.sync.runner import SimulatedClock, SimulatedWallClock

if TYPE_CHECKING:
    import pluggy

    from segsync.core.desired import Desired
    from segsync.plugins.registry import Registry
    from segsync.sync.engine import SyncResult

#: The segments a demo purchase moves someone out of, best first (RFM R×F map keys).
LAPSED = ("at_risk", "cant_lose_them", "hibernating", "about_to_sleep", "need_attention")


def run_demo(*, platform: str, contacts: int, folder: Path | None, as_of: dt.date) -> int:
    from segsync.sandbox import demo_dataset

    pm = make_plugin_manager()
    registry = build_registry(pm)
    cls = registry.platform(platform)
    sandbox_cls = cls.sandbox()
    if sandbox_cls is None:
        raise ConfigError(f"platform {platform!r} ships no sandbox, so it has no demo")
    if contacts < 50:
        raise ConfigError("--contacts: use at least 50 so every segment has members")
    workdir = folder or Path(tempfile.mkdtemp(prefix="segsync-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clock = SimulatedClock()
    secret = f"demo-{secrets.token_hex(12)}"
    sandbox = sandbox_cls(secret=secret, clock=clock)
    data = demo_dataset(as_of, contacts=contacts)
    sandbox.seed(data)
    sandbox.start()
    try:
        config_path = workdir / "segsync.toml"
        config_path.write_text(_demo_config(platform, sandbox.base_url), encoding="utf-8")
        demo = _Demo(
            pm, registry, platform, config_path, {**os.environ, cls.secret_env: secret}, clock, as_of
        )
        print(
            f"segsync demo: {cls.display_name} sandbox at {sandbox.base_url}, "
            f"{len(data.contacts):,} contacts, {len(data.purchases):,} deals, as of {as_of}\n"
            f"project: {config_path}"
        )
        started = clock.now()
        first = demo.run("1. first sync: create fields and lists, write every contact")
        waited = human_duration(clock.now() - started)
        print(f"   simulated time under {cls.display_name}'s rate limits: {waited}")
        _print_segments(first)
        second = demo.run("2. second sync: nothing changed in the CRM")
        print(f"   write calls: {second.report.write_calls} (a sync with no change writes nothing)")
        _buy_again(demo, sandbox, _pick_buyer(first), as_of)
        print(
            f"\ndone. The demo project is in {workdir};\n"
            f"`segsync jobs -c {config_path}` shows the job history."
        )
    finally:
        sandbox.stop()
    return 0


class _Demo:
    """One demo project's syncs, on simulated time: a rate pause is fast-forwarded, not waited."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        registry: Registry,
        platform: str,
        config_path: Path,
        env: dict[str, str],
        clock: SimulatedClock,
        as_of: dt.date,
    ) -> None:
        from segsync.project.config import load_config

        self.registry, self.platform, self.env, self.clock, self.as_of = registry, platform, env, clock, as_of
        self.config = load_config(config_path)
        self.hooks = Hooks(pm)
        self.wall = SimulatedWallClock(clock, dt.datetime.now(dt.UTC))
        self.printer = Progress()

    def run(self, title: str) -> SyncResult:
        from segsync.project.run import sync_project

        print(f"\n== {title}", flush=True)
        while True:
            try:
                result = sync_project(
                    self.config,
                    self.platform,
                    registry=self.registry,
                    as_of=self.as_of,
                    hooks=self.hooks,
                    env=self.env,
                    clock=self.clock,
                    wall_clock=self.wall,
                    progress=lambda e: self.printer(e.phase, e.done, e.total),
                )
            except SyncPaused as paused:
                self.printer.done()
                print(
                    "   rate budget spent: a real run exits here (status 75) and resumes when run "
                    f"again; the demo fast-forwards {paused.resume_after / 60:.0f} min and runs again",
                    flush=True,
                )
                self.clock.advance(paused.resume_after)
                continue
            self.printer.done()
            print(render_report(self.platform, result.report))
            return result


def _buy_again(demo: _Demo, sandbox: Any, buyer: str, as_of: dt.date) -> None:
    """Steps 3 and 4: a purchase reaches the CRM, and the next sync moves its buyer."""
    before = sandbox.snapshot()
    amount = Decimal("480.00")
    sandbox.add_purchase(buyer, amount, dt.datetime.combine(as_of, dt.time(12, 0), tzinfo=dt.UTC))
    print(f"\n== 3. contact {buyer} buys again today ({money(amount)})")
    third = demo.run("4. sync after the purchase")
    _print_contact_change(buyer, before, sandbox.snapshot())
    print(f"   the rest of this sync touched {third.report.contacts_written - 1} other contact(s)")


def _demo_config(platform: str, base_url: str) -> str:
    return (
        "# segsync demo project (written by `segsync demo`)\n"
        "[project]\n"
        'state = ".segsync/state.db"\n\n'
        "[segments]\n"
        'packs = ["rfm-standard", "lifecycle"]\n\n'
        f"[platforms.{platform}]\n"
        f'base_url = "{base_url}"\n'
    )


def _computed(result: SyncResult) -> Desired:
    from segsync.core.desired import Desired

    assert isinstance(result.desired, Desired), "a finished sync always carries its computed state"
    return result.desired


def _print_segments(result: SyncResult) -> None:
    summary = _computed(result).summary
    rejections = result.rejections
    print(
        f"\n{summary.customers:,} customers of {summary.contacts:,} contacts, "
        f"revenue {money(summary.revenue)}; {len(rejections)} record(s) rejected"
    )
    for s in summary.sets:
        rows = [(seg.name, seg.contacts, seg.revenue_share, seg.average_order) for seg in s.segments]
        print(f"\n{s.label} ({s.mode})")
        print(table(["segment", "contacts", "revenue share", "avg order"], rows, right=(1, 2, 3)))
    bins = summary.bins
    grid_rows = [
        (f"R={r}", *(summary.rfm_grid.get((r, f), 0) for f in range(1, bins + 1))) for r in range(bins, 0, -1)
    ]
    print("\nRFM grid: customers per recency (rows) and frequency (columns) score")
    print(table(["", *(f"F={f}" for f in range(1, bins + 1))], grid_rows, right=tuple(range(1, bins + 1))))
    reasons = [f"{r.kind} {r.record_id}: {r.reason}" for r in rejections[:8]]
    if reasons:
        print("\nrejected records (kept out, recorded, never written):")
        for line in reasons:
            print(f"  {line}")


def _pick_buyer(result: SyncResult) -> str:
    segments = _computed(result).segments.get("rfm", {})
    for wanted in LAPSED:
        for contact_id, segment in sorted(segments.items()):
            if segment == wanted:
                return contact_id
    return min(segments)


def _print_contact_change(contact_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    old = before["fields"].get(contact_id, {})
    new = after["fields"].get(contact_id, {})
    keys = sorted(set(old) | set(new))
    rows = [(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]
    print(f"\ncontact {contact_id} as the CRM now holds it (changed fields):")
    print(table(["field", "before", "after"], rows))
    lists_before = {name for name, ids in before["lists"].items() if contact_id in ids}
    lists_after = {name for name, ids in after["lists"].items() if contact_id in ids}
    for name in sorted(lists_before - lists_after):
        print(f"  left list  {name}")
    for name in sorted(lists_after - lists_before):
        print(f"  joined list {name}")
