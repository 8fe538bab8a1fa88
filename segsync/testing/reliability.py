"""The reliability harness (issue 4): faults, kills and deletions, then the CRM must be exact.

Every scenario starts from a fresh :class:`~segsync.testing.World` seeded with a small demo
store, syncs through trouble, recovers the way a user would (run the same command again), and
then requires the CRM snapshot to equal a clean run's *exactly* — every value, every
membership, no duplicate list or field — and one more sync to write nothing:

* every fault kind of :data:`segsync.sandbox.server.FAULT_KINDS` (429, 500, 502, 503, timeout,
  drop, lost_response) injected into a share of all requests;
* a job killed (an in-process ``kill -9``: :class:`SimulatedKill`, a ``BaseException`` the
  engine does not clean up after) at many random calls, before a request is sent or after its
  answer was lost, and inside a plugin hook; the job is left ``running`` with its lock held by
  a dead process, and the next run must take over, mark it ``interrupted`` and resume;
* a contact deleted and a list removed between the pull and the writes, and a list deleted
  between two runs.

Use it from pytest by subclassing :class:`ReliabilitySuite` (mark it ``reliability``)::

    @pytest.mark.reliability
    class TestHubSpotReliability(ReliabilitySuite):
        def make_world(self):
            return SandboxWorld(HubSpotPlatform, settings={"timeout": 0.2}, hang_seconds=0.3)

or drive :class:`ReliabilityHarness` directly. Time runs on a :class:`FakeClock` shared with
the world, so Retry-After waits, backoffs and throttling cost no real time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from segsync.core.report import SegmentChange
from segsync.errors import PlatformError, SyncPaused
from segsync.plugins.hookspecs import hookimpl
from segsync.project.run import project_spec
from segsync.sandbox import FaultPlan, SeedData, demo_dataset
from segsync.sandbox.server import FAULT_KINDS
from segsync.sync.engine import SyncResult, SyncSpec, run_sync
from segsync.sync.runner import CallRunner, RetryPolicy
from segsync.sync.state import LockOwner, StateStore
from segsync.testing.clock import FakeClock, FakeWallClock
from segsync.testing.world import World

T = TypeVar("T")

AS_OF = dt.date(2026, 1, 15)
#: Generous attempts so a 25% fault rate rarely exhausts a call; waits cost nothing (fake clock).
POLICY = RetryPolicy(max_attempts=8, max_total_seconds=3600, backoff_initial=0.5, max_rate_wait=7200)
HOST = "reliability-harness"


class SimulatedKill(BaseException):  # noqa: N818 - it is not an error: it is the process dying
    """``kill -9`` inside one process: nothing after it runs (the engine catches only Exception)."""


class ScriptedRunner(CallRunner):
    """A :class:`CallRunner` that dies at logical call ``kill_at`` and runs actions before calls.

    ``kill_after_send`` kills after the call returned (the CRM applied it, the answer is lost
    with the process) instead of before it is sent. ``before_first_write`` runs once, before
    the first write call.
    """

    def __init__(
        self,
        *args: Any,
        kill_at: int | None = None,
        kill_after_send: bool = False,
        before_first_write: Callable[[], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.kill_at = kill_at
        self.kill_after_send = kill_after_send
        self.before_first_write = before_first_write
        self.sent = 0
        #: (operation, write) of every logical call, in order
        self.log: list[tuple[str, bool]] = []

    def call(self, operation: str, fn: Callable[[], T], *, bucket: str = "default", write: bool = False) -> T:
        self.sent += 1
        self.log.append((operation, write))
        if write and self.before_first_write is not None:
            action, self.before_first_write = self.before_first_write, None
            action()
        if self.sent == self.kill_at and not self.kill_after_send:
            raise SimulatedKill(f"killed before call {self.sent} ({operation})")
        result = super().call(operation, fn, bucket=bucket, write=write)
        if self.sent == self.kill_at:
            raise SimulatedKill(f"killed after call {self.sent} ({operation})")
        return result


class _KillInHook:
    """A plugin whose ``segment_changed`` kills the process at its ``nth`` call."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.seen = 0

    @hookimpl
    def segment_changed(self, change: SegmentChange) -> None:
        self.seen += 1
        if self.seen == self.nth:
            raise SimulatedKill(f"killed in segment_changed #{self.nth}")


class _OnFirstChange:
    """A plugin that runs an action once, at the first ``segment_changed`` (after a write batch)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action: Callable[[], None] | None = action

    @hookimpl
    def segment_changed(self, change: SegmentChange) -> None:
        if self.action is not None:
            action, self.action = self.action, None
            action()


def standard_spec() -> SyncSpec:
    """The default project (``segsync init``'s config: the standard RFM pack)."""
    from segsync.plugins.manager import build_registry, make_plugin_manager
    from segsync.project.config import ProjectConfig
    from segsync.project.packs import load_packs

    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    config = ProjectConfig()
    return project_spec(config, load_packs(config, registry), registry)


def diff_snapshots(got: Mapping[str, Any], want: Mapping[str, Any], limit: int = 12) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    out: list[str] = []
    for part in ("field_defs", "list_names"):
        if got.get(part) != want.get(part):
            out.append(f"{part}: got {got.get(part)} want {want.get(part)}")
    got_lists, want_lists = got.get("lists", {}), want.get("lists", {})
    for name in sorted(set(got_lists) | set(want_lists)):
        g, w = set(got_lists.get(name, ())), set(want_lists.get(name, ()))
        if g != w:
            out.append(f"list {name!r}: extra {sorted(g - w)[:8]} missing {sorted(w - g)[:8]}")
    got_values, want_values = got.get("fields", {}), want.get("fields", {})
    for cid in sorted(set(got_values) | set(want_values)):
        g, w = got_values.get(cid, {}), want_values.get(cid, {})
        if g != w:
            keys = sorted(k for k in set(g) | set(w) if g.get(k) != w.get(k))
            out.append(
                f"contact {cid}: " + ", ".join(f"{k} got {g.get(k)!r} want {w.get(k)!r}" for k in keys)
            )
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more difference(s)"]
    return out


@dataclass
class _Run:
    """One scenario: a world, its clock, its state file, and the pid of the latest "process"."""

    world: World
    clock: FakeClock
    store_path: Path
    pid: int = 20_000


@dataclass
class Outcome:
    snapshot: dict[str, object]
    results: list[SyncResult] = field(default_factory=list)
    value_changes: int | None = None


class ReliabilityHarness:
    """Runs scenarios on fresh worlds and checks them against a clean run."""

    def __init__(
        self,
        make_world: Callable[[], World],
        spec: SyncSpec,
        *,
        workdir: Path,
        data: SeedData | None = None,
        as_of: dt.date = AS_OF,
        policy: RetryPolicy = POLICY,
        purchase_chunk: int = 40,
    ) -> None:
        self.make_world = make_world
        self.spec = spec
        self.workdir = workdir
        self.data = data or demo_dataset(as_of, contacts=80)
        self.as_of = as_of
        self.policy = policy
        self.purchase_chunk = purchase_chunk
        self._scenarios = 0
        self._reference: Outcome | None = None
        self._calls: list[tuple[str, bool]] = []

    # -- plumbing -------------------------------------------------------------------------

    def _fresh(self, data: SeedData | None = None) -> _Run:
        self._scenarios += 1
        clock = FakeClock()
        world = self.make_world()
        world.start(data or self.data, clock=clock)
        return _Run(world, clock, self.workdir / f"scenario-{self._scenarios}.db")

    def _runner(self, run: _Run, **script: Any) -> ScriptedRunner:
        cls = run.world.platform_cls
        return ScriptedRunner(
            cls.name,
            policy=self.policy,
            buckets=cls.rate_buckets(run.world.settings()),
            clock=run.clock,
            **script,
        )

    def sync(
        self,
        run: _Run,
        *,
        runner: CallRunner | None = None,
        plugins: tuple[object, ...] = (),
    ) -> SyncResult:
        """One ``segsync sync`` as a new process (new pid; earlier pids count as dead)."""
        from segsync.plugins.manager import Hooks, make_plugin_manager

        run.pid += 1
        pm = make_plugin_manager(load_entrypoints=False)
        for n, plugin in enumerate(plugins):
            pm.register(plugin, name=f"reliability-{n}")
        store = StateStore(
            run.store_path,
            wall_clock=FakeWallClock(run.clock),
            owner=LockOwner(run.pid, HOST),
            alive={run.pid},
        )
        platform = run.world.connect(runner or self._runner(run))
        try:
            return run_sync(
                platform,
                self.spec,
                store=store,
                account="harness",
                as_of=self.as_of,
                hooks=Hooks(pm),
                purchase_chunk=self.purchase_chunk,
            )
        finally:
            platform.close()
            store.close()

    def _outcome(self, run: _Run, results: list[SyncResult]) -> Outcome:
        crm = getattr(run.world, "crm", None)
        changes = getattr(crm, "value_changes", None)
        outcome = Outcome(run.world.snapshot(), results, changes if isinstance(changes, int) else None)
        run.world.stop()
        return outcome

    def _converge(self, run: _Run, results: list[SyncResult], limit: int = 4) -> None:
        """Sync until a run finds nothing to write (deletions change what the others score)."""
        for _ in range(limit):
            result = self.sync(run)
            results.append(result)
            if result.plan is not None and not result.plan.writes_anything:
                return
        plan = results[-1].plan
        raise AssertionError(
            f"still writing after {limit} runs: {'; '.join(plan.describe() if plan else [])}"
        )

    # -- scenarios ------------------------------------------------------------------------

    def reference(self) -> Outcome:
        """A clean run (cached); the second run must write nothing."""
        if self._reference is None:
            run = self._fresh()
            runner = self._runner(run)
            results = [self.sync(run, runner=runner)]
            self._calls = list(runner.log)
            assert results[0].report.status == "succeeded"
            self._recover_idle(run, results)
            self._reference = self._outcome(run, results)
        return self._reference

    def _recover_idle(self, run: _Run, results: list[SyncResult]) -> None:
        last = self.sync(run)
        results.append(last)
        assert last.plan is not None
        assert not last.plan.writes_anything, "; ".join(last.plan.describe())
        assert last.report.write_calls == 0, "a sync with nothing to change made write calls"

    def with_faults(self, kind: str, *, rate: float = 0.25, seed: int = 1) -> Outcome:
        run = self._fresh()
        retry_after = 1.0 if kind == "429" else None
        run.world.set_faults(FaultPlan(rates={kind: rate}, seed=seed, retry_after=retry_after))
        results: list[SyncResult] = []
        for attempt in range(1, 5):
            try:
                results.append(self.sync(run))
                break
            except (PlatformError, SyncPaused):
                if attempt == 4:
                    raise
        run.world.set_faults(None)
        self._recover_idle(run, results)
        return self._outcome(run, results)

    def killed(self, at_call: int, *, after_send: bool) -> Outcome:
        run = self._fresh()
        runner = self._runner(run, kill_at=at_call, kill_after_send=after_send)
        return self._killed_then_resumed(run, lambda: self.sync(run, runner=runner))

    def killed_in_hook(self, nth_change: int) -> Outcome:
        run = self._fresh()
        return self._killed_then_resumed(run, lambda: self.sync(run, plugins=(_KillInHook(nth_change),)))

    def _killed_then_resumed(self, run: _Run, doomed: Callable[[], SyncResult]) -> Outcome:
        results: list[SyncResult] = []
        try:
            results.append(doomed())
        except SimulatedKill:
            with StateStore(run.store_path, owner=LockOwner(0, HOST)) as store:
                job = store.recent_jobs(1)[0]
                assert job.status == "running", f"a killed job must stay running, not {job.status}"
                holder = store.lock_holder(job.platform, job.account)
                assert holder is not None
                assert holder.owner.pid == run.pid, "the dead process must still hold the lock"
            resumed = self.sync(run)
            results.append(resumed)
            assert resumed.report.job.resumed_from == job.id, "the next run must resume the killed job"
            with StateStore(run.store_path, owner=LockOwner(0, HOST)) as store:
                assert store.job(job.id).status == "interrupted"
        self._recover_idle(run, results)
        return self._outcome(run, results)

    def contact_deleted_before_write(self) -> tuple[Outcome, Outcome]:
        """A contact deleted between pull and write; returns (outcome, reference without them)."""
        victim = self._a_prospect()
        run = self._fresh()
        runner = self._runner(run, before_first_write=lambda: run.world.delete_contact(victim))
        results = [self.sync(run, runner=runner)]
        assert results[0].report.failed_records >= 1, "writing to a deleted contact must fail per record"
        self._converge(run, results)
        outcome = self._outcome(run, results)
        ref_run = self._fresh()
        ref_run.world.delete_contact(victim)
        ref_results: list[SyncResult] = []
        self._converge(ref_run, ref_results)
        return outcome, self._outcome(ref_run, ref_results)

    def list_deleted_mid_run(self) -> Outcome:
        """A list is deleted after it was created, before its members were added."""
        run = self._fresh()

        def delete_a_list() -> None:
            with StateStore(run.store_path, owner=LockOwner(0, HOST)) as store:
                ids = store.remote_ids(run.world.platform_cls.name, "harness", "list")
            run.world.delete_list(ids[sorted(ids)[0]][0])

        results = [self.sync(run, plugins=(_OnFirstChange(delete_a_list),))]
        self._recover_idle(run, results)
        return self._outcome(run, results)

    def list_deleted_between_runs(self) -> Outcome:
        run = self._fresh()
        results = [self.sync(run)]
        with StateStore(run.store_path, owner=LockOwner(0, HOST)) as store:
            ids = store.remote_ids(run.world.platform_cls.name, "harness", "list")
        for key in sorted(ids)[:2]:
            run.world.delete_list(ids[key][0])
        results.append(self.sync(run))
        assert results[-1].report.lists_created == 2
        self._recover_idle(run, results)
        return self._outcome(run, results)

    def _a_prospect(self) -> str:
        """A contact who never bought: deleting them changes no one else's scores, so the end
        state can be compared exactly with a clean run on a CRM that never had them."""
        buyers = {p.contact_id for p in self.data.purchases}
        prospects = [c.id for c in self.data.contacts if c.id not in buyers and c.email]
        return prospects[len(prospects) // 2]

    # -- checks ---------------------------------------------------------------------------

    def assert_same(self, outcome: Outcome, reference: Outcome | None = None, *, what: str = "") -> None:
        ref = reference or self.reference()
        diff = diff_snapshots(outcome.snapshot, ref.snapshot)
        assert not diff, f"{what}: the CRM differs from a clean run's:\n" + "\n".join(diff)
        names = outcome.snapshot.get("list_names", [])
        assert isinstance(names, list)
        assert len(names) == len(set(names)), f"{what}: duplicate lists {names}"
        if reference is None and outcome.value_changes is not None and ref.value_changes is not None:
            assert outcome.value_changes == ref.value_changes, (
                f"{what}: {outcome.value_changes} field values changed in the CRM, a clean run changes "
                f"{ref.value_changes}: something was written twice or missed"
            )

    def kill_points(self, count: int, seed: int = 7) -> list[tuple[int, bool]]:
        """Where to kill: (call number, after_send) pairs over a clean run's calls.

        The first call of every write operation, killed after it was applied (the answer
        lost with the process: the case that doubles lists when ensure-steps are wrong), the
        last call, and ``count`` more at random points, before or after sending.
        """
        self.reference()
        calls = self._calls
        targeted: dict[int, bool] = {}
        for op in dict.fromkeys(op for op, write in calls if write):
            targeted[next(i for i, (o, _) in enumerate(calls, start=1) if o == op)] = True
        targeted[len(calls)] = True
        rng = random.Random(seed)
        for i, point in enumerate(rng.sample(range(1, len(calls) + 1), min(count, len(calls)))):
            targeted.setdefault(point, i % 2 == 1)
        return sorted(targeted.items())


class ReliabilitySuite:
    """Subclass, implement :meth:`make_world`, mark the class ``reliability``.

    Class attributes: ``contacts`` (demo store size, default 80), ``kill_points`` (random
    kills on top of the targeted ones, default 12), ``fault_rate`` (share of requests answered
    badly, default 0.25) and ``fault_rates`` (per kind), ``hook_kills``.
    Override :meth:`sync_spec` to test another project than the standard RFM pack.
    """

    contacts: ClassVar[int] = 80
    kill_points: ClassVar[int] = 12
    fault_rate: ClassVar[float] = 0.25
    #: per-kind overrides of ``fault_rate``, e.g. ``{"timeout": 0.05}`` where a sandbox's
    #: timeouts hold connections for real seconds
    fault_rates: ClassVar[Mapping[str, float]] = {}
    hook_kills: ClassVar[tuple[int, ...]] = (1, 7)

    def make_world(self) -> World:
        raise NotImplementedError("return a fresh World, e.g. SandboxWorld(MyPlatform)")

    def sync_spec(self) -> SyncSpec:
        return standard_spec()

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, tmp_path_factory: pytest.TempPathFactory) -> ReliabilityHarness:
        """One harness per class, so the clean reference run is made once."""
        suite = cls()
        return ReliabilityHarness(
            suite.make_world,
            suite.sync_spec(),
            workdir=tmp_path_factory.mktemp("reliability"),
            data=demo_dataset(AS_OF, contacts=cls.contacts),
        )

    def test_clean_run_then_nothing_to_write(self, harness: ReliabilityHarness) -> None:
        ref = harness.reference()
        first = ref.results[0].report
        assert first.contacts_written > 0
        assert first.lists_created > 0
        assert first.members_added > 0

    @pytest.mark.parametrize("kind", FAULT_KINDS)
    def test_faults_leave_the_crm_exact(self, harness: ReliabilityHarness, kind: str) -> None:
        outcome = harness.with_faults(kind, rate=self.fault_rates.get(kind, self.fault_rate))
        assert sum(r.report.retries for r in outcome.results) > 0, f"no {kind} fault was injected"
        harness.assert_same(outcome, what=f"fault {kind}")

    def test_killed_jobs_resume_exactly(self, harness: ReliabilityHarness) -> None:
        for at_call, after_send in harness.kill_points(self.kill_points):
            outcome = harness.killed(at_call, after_send=after_send)
            harness.assert_same(outcome, what=f"killed {'after' if after_send else 'before'} call {at_call}")

    def test_killed_in_a_hook_resumes_exactly(self, harness: ReliabilityHarness) -> None:
        for nth in self.hook_kills:
            harness.assert_same(harness.killed_in_hook(nth), what=f"killed in segment_changed #{nth}")

    def test_contact_deleted_between_pull_and_write(self, harness: ReliabilityHarness) -> None:
        outcome, reference = harness.contact_deleted_before_write()
        harness.assert_same(outcome, reference, what="contact deleted between pull and write")

    def test_list_deleted_mid_run_is_recreated(self, harness: ReliabilityHarness) -> None:
        harness.assert_same(harness.list_deleted_mid_run(), what="list deleted mid-run")

    def test_list_deleted_between_runs_is_recreated(self, harness: ReliabilityHarness) -> None:
        harness.assert_same(harness.list_deleted_between_runs(), what="list deleted between runs")


__all__ = [
    "AS_OF",
    "POLICY",
    "Outcome",
    "ReliabilityHarness",
    "ReliabilitySuite",
    "ScriptedRunner",
    "SimulatedKill",
    "diff_snapshots",
    "standard_spec",
]
