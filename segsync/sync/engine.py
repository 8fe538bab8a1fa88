"""The sync engine: one job on one platform, from pull to the last membership batch.

::

    lock → job record → sync_started → resolve lists → pull contacts + purchases → compute
         → observe (fields, members) → plan → [dry run: stop here] → apply → sync_finished

The engine talks to the CRM only through :class:`~segsync.sync.platform.Platform`; every call goes
through the platform's :class:`~segsync.sync.runner.CallRunner` (throttle and the one retry layer).
What makes a job safe to kill at any moment and run again:

* plans are made against what the CRM really holds, so a re-run writes only what is missing;
* creates are *ensure* steps: after an ambiguous failure the engine looks the field or list up
  by name before creating it again, so a create that timed out but succeeded never doubles;
* a checkpoint after every applied batch, and an account lock that survives a crash (a dead
  owner's lock is taken over and its job marked ``interrupted``);
* per-record failures are recorded and the rest goes on; they are retried on later runs and
  parked after ``max_failed_runs``; a list deleted behind segsync's back mid-run is recreated.

:class:`~segsync.errors.SyncPaused` (a rate budget spent) leaves the job ``paused`` with its
checkpoint and is re-raised (the CLI exits 75). Any other ``Exception`` marks the job failed
and is re-raised; ``KeyboardInterrupt`` marks it interrupted. Other ``BaseException``\\s
(``SystemExit``, a test's simulated ``kill -9``) leave everything as a killed process would.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

from segsync.core.columns.ledger import PurchaseLedger
from segsync.core.models import (
    Contact,
    FieldSpec,
    ListSpec,
    Rejection,
    RemoteList,
)
from segsync.core.plan import (
    DesiredState,
    FieldConflict,
    Observed,
    SyncPlan,
    make_plan,
)
from segsync.core.report import JobInfo, JobStatus, SyncReport
from segsync.errors import ConfigError, SegsyncError, SyncPaused, SyncStopped
from segsync.sync.apply import ApplyPhase
from segsync.sync.contacts import ContactPhase
from segsync.sync.hooks import Hooks as Hooks  # re-exported: run_sync takes it
from segsync.sync.platform import ListsById, Platform
from segsync.sync.pull import FULL_PULL as FULL_PULL  # re-exported: the cursor's name
from segsync.sync.pull import PullPhase
from segsync.sync.state import AccountLedger, StateStore, scrub

log = logging.getLogger("segsync.engine")  # a stable name for log filters
T = TypeVar("T")

#: Purchases are saved to the cache in chunks of this many while pulling, when the platform
#: yields them in modification order, so a pull cut short resumes where it stopped.
PURCHASE_CHUNK = 500
#: Seconds between lock heartbeats during long pulls.
HEARTBEAT_EVERY = 30.0

ComputeFn = Callable[[Sequence[Contact], PurchaseLedger, dt.date], DesiredState]
Phase = Literal["pull", "compute", "plan", "apply"]


@dataclass(frozen=True)
class SyncSpec:
    """What a project syncs, known before any data is pulled.

    ``fields`` and ``lists`` are resolved and pulled before computing (Brevo-like platforms
    report memberships inline only for lists they are told about); ``properties`` are the
    contact properties the rules read; ``compute`` turns contacts and the account's purchase
    ledger (its columns, or its :class:`Purchase` objects when iterated) into the desired state
    (:func:`project_spec` binds :func:`segsync.core.columns.objects.compute_rows`).
    """

    fields: tuple[FieldSpec, ...]
    lists: tuple[ListSpec, ...]
    properties: tuple[str, ...]
    compute: ComputeFn


@dataclass(frozen=True)
class Progress:
    """A progress event: ``phase`` (``pull_contacts``, ``pull_purchases``, ``apply``...),
    records or batches ``done`` so far, ``total`` when known."""

    phase: str
    done: int
    total: int | None = None
    detail: str = ""


@dataclass
class SyncResult:
    report: SyncReport
    plan: SyncPlan | None = None
    desired: DesiredState | None = None
    rejections: tuple[Rejection, ...] = ()


def run_sync(
    platform: Platform,
    spec: SyncSpec,
    *,
    store: StateStore,
    account: str,
    as_of: dt.date,
    hooks: Hooks | None = None,
    dry_run: bool = False,
    full: bool = False,
    retry_failed: bool = False,
    max_failed_runs: int | None = None,
    dynamic_lists: bool | None = None,
    progress: Callable[[Progress], None] | None = None,
    purchase_chunk: int = PURCHASE_CHUNK,
    force_as_of: bool = False,
    full_every: dt.timedelta | None = None,
    concurrency: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """Run one sync job (or, with ``dry_run``, everything up to the plan).

    ``should_stop``: asked after each checkpoint and pulled page; True stops the job there with
    :class:`~segsync.errors.SyncStopped` (status ``interrupted``; the next sync resumes it).

    ``concurrency``: write batches in flight at once, at most the platform's
    ``limits.concurrency``; every call still goes through the account's one throttle.

    ``full_every``: on an incremental platform, pull every purchase again when the last full
    pull is older than this (it repairs what an incremental pull cannot see); None never does.

    ``account`` names the CRM account in the state store (see
    :func:`segsync.sync.connect.account_key`). ``max_failed_runs`` None means the runner's
    ``RetryPolicy.max_failed_runs`` (``[retry]`` in segsync.toml). ``dynamic_lists`` None
    means the platform's own ``dynamic_lists`` (True for HubSpot DYNAMIC lists).
    """
    if max_failed_runs is None:
        max_failed_runs = platform.runner.policy.max_failed_runs
    if dynamic_lists is None:
        dynamic_lists = platform.dynamic_lists
    job = _Job(
        platform,
        spec,
        store=store,
        account=account,
        as_of=as_of,
        hooks=hooks,
        dry_run=dry_run,
        full=full,
        retry_failed=retry_failed,
        max_failed_runs=max_failed_runs,
        dynamic_lists=dynamic_lists,
        progress=progress,
        purchase_chunk=purchase_chunk,
        force_as_of=force_as_of,
        full_every=full_every,
        concurrency=min(concurrency, platform.limits.concurrency),
    )
    job.should_stop = should_stop
    return job.run()


class _Job(ContactPhase, PullPhase, ApplyPhase):
    def __init__(
        self,
        platform: Platform,
        spec: SyncSpec,
        *,
        store: StateStore,
        account: str,
        as_of: dt.date,
        hooks: Hooks | None,
        dry_run: bool,
        full: bool,
        retry_failed: bool,
        max_failed_runs: int,
        dynamic_lists: bool,
        progress: Callable[[Progress], None] | None,
        purchase_chunk: int,
        force_as_of: bool = False,
        full_every: dt.timedelta | None = None,
        concurrency: int = 1,
    ) -> None:
        self.platform = platform
        self.concurrency = max(1, concurrency)
        self.full_every = full_every
        self.force_as_of = force_as_of
        self.purchase_chunk = purchase_chunk
        self.spec: SyncSpec = spec
        self.store = store
        self.account = account
        self.state = store.account(platform.name, account)
        #: Where purchase pulls are saved: the account's ledger, or a dry run's scratch copy.
        self.ledger_state = self.state
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._scratch_store: StateStore | None = None
        self.as_of = as_of
        self.hooks = hooks
        self.dry_run = dry_run
        self.full = full
        self.retry_failed = retry_failed
        self.max_failed_runs = max_failed_runs
        self.dynamic_lists = dynamic_lists
        self.progress = progress
        self.name = platform.name
        self.runner = platform.runner
        st = self.runner.stats
        self.stats0 = (st.calls, st.writes, st.retries, st.rate_limited)
        self.buckets0 = dict(st.per_bucket)
        self.lists: dict[str, RemoteList | None] = {}
        self.rebuilt: set[str] = set()
        self.batches = 0
        self.last_beat = self.runner.clock.now()
        self.info: JobInfo
        self.report: SyncReport
        self.should_stop: Callable[[], bool] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def run(self) -> SyncResult:
        if not self.dry_run:
            taken = self.state.acquire_lock()
            if taken is not None:
                log.warning("%s: job %s died holding the lock; taking over and resuming", self.name, taken)
        else:
            self.ledger_state = self._scratch_ledger()
        try:
            self.info = self.state.start_job(as_of=self.as_of, dry_run=self.dry_run, full=self.full)
        except BaseException:
            if not self.dry_run:
                self.state.release_lock()
            self._close_scratch()
            raise
        self.report = SyncReport(job=self.info, started_at=self.store.wall_clock.now(), phase="pull")
        self._notify("sync_started", lambda h: h.sync_started(self.info))
        try:
            result = self._phases()
        except (Exception, KeyboardInterrupt) as exc:
            self._end(exc)
            raise
        # Anything else (SystemExit, a simulated kill -9) propagates untouched: the job stays
        # "running" with its lock held, exactly what a killed process leaves behind.
        self._end(None)
        return result

    def _end(self, exc: BaseException | None) -> None:
        status: JobStatus = "succeeded"
        if isinstance(exc, SyncPaused):
            status = "paused"
            self.report.resume_after_seconds = exc.resume_after
        elif isinstance(exc, KeyboardInterrupt | SyncStopped):
            status = "interrupted"
        elif exc is not None:
            status = "failed"
        if isinstance(exc, KeyboardInterrupt):
            self.report.error = "interrupted (Ctrl-C); the next sync resumes it"
        elif exc is not None:
            self.report.error = scrub(str(exc)) if isinstance(exc, SegsyncError) else _internal(exc)
        self.report.status = status
        self.report.finished_at = self.store.wall_clock.now()
        self._count_calls()
        self.store.finish_job(self.report)
        if not self.dry_run:
            self.state.release_lock()
        self._close_scratch()
        self._notify("sync_finished", lambda h: h.sync_finished(self.report))

    def _notify(self, hook: str, call: Callable[[Hooks], None]) -> None:
        """Tell plugins; a plugin that raises is logged, never allowed to fail the sync."""
        if self.hooks is None:
            return
        try:
            call(self.hooks)
        except Exception as exc:
            log.warning("a plugin's %s hook failed: %s", hook, _internal(exc))

    def _phase(self, phase: Phase) -> None:
        self.report.phase = phase
        self._count_calls()
        self.store.update_job(self.report)

    def _count_calls(self) -> None:
        st, (calls, writes, retries, limited) = self.runner.stats, self.stats0
        self.report.calls = st.calls - calls
        self.report.write_calls = st.writes - writes
        self.report.retries = st.retries - retries
        self.report.rate_limited = st.rate_limited - limited

    def _stop_here(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise SyncStopped(
                f"{self.name}: stopped as asked, after {self.report.phase}; the next sync resumes"
            )

    def _tick(self, phase: str, done: int, total: int | None = None, detail: str = "") -> None:
        self._stop_here()
        if self.progress is not None:
            self.progress(Progress(phase, done, total, detail))
        now = self.runner.clock.now()
        if not self.dry_run and now - self.last_beat >= HEARTBEAT_EVERY:
            self.last_beat = now
            self.state.heartbeat()

    def _checkpoint(self, step: str) -> None:
        self.batches += 1
        self._count_calls()
        detail = {
            "contacts_written": self.report.contacts_written,
            "members_added": self.report.members_added,
            "members_removed": self.report.members_removed,
            "failed_records": self.report.failed_records,
        }
        self.store.checkpoint(self.info.job_id, self.report.phase, step, self.batches, detail)
        self.store.update_job(self.report)
        self.last_beat = self.runner.clock.now()
        self._stop_here()

    # -- phases ---------------------------------------------------------------------------

    def _phases(self) -> SyncResult:
        if self.info.resumed_from is not None:
            cp = self.store.last_checkpoint(self.info.resumed_from)
            where = f" (it stopped after {cp.step})" if cp else ""
            log.info(
                "%s: resuming job %s%s; re-planning against the CRM", self.name, self.info.resumed_from, where
            )
        self._resolve_lists(self.spec.lists)
        contacts, rejections, purchases = self._pull()
        self._check_as_of(purchases.rows().first_day())
        self.state.forget_failures_except(c.id for c in contacts)

        self._phase("compute")
        desired = self.spec.compute(contacts, purchases, self.as_of)
        rejections.extend(desired.rejections)
        self.store.record_rejections(self.info.job_id, rejections)
        self.report.rejected = len(rejections)
        self.report.segment_sizes = _segment_sizes(desired)

        self._phase("plan")
        observed = self._observe(desired, contacts)
        if self.retry_failed and not self.dry_run:
            released = self.state.release_given_up()
            if released:
                log.info("%s: %d parked record(s) will be retried", self.name, released)
        held: frozenset[tuple[str, str]] = frozenset() if self.retry_failed else self.state.held_records()
        used = {b: n - self.buckets0.get(b, 0) for b, n in self.runner.stats.per_bucket.items()}
        plan = make_plan(
            desired,
            observed,
            dynamic_lists=self.dynamic_lists,
            held=held,
            cost=self.platform.call_cost,
            windows=self.runner.budget_windows,
            used=used,
        )
        self.report.conflicts = list(plan.summary.conflicts)
        for op in plan.of_type(FieldConflict):
            log.warning("%s: %s", self.name, op)
        result = SyncResult(self.report, plan, desired, tuple(rejections))
        if self.dry_run:
            return result
        self._phase("apply")
        self._apply(plan, desired)
        return result

    def _pull(self) -> tuple[list[Contact], list[Rejection], AccountLedger]:
        """Contacts, then purchases; at the same time where calls may run concurrently (they
        are independent, and each saves its own progress), contacts in a second thread.
        Rejections come in the same order either way: the contacts', then the purchases'."""
        if self.concurrency <= 1:
            contacts, rejections = self._pull_contacts()
            return contacts, rejections, self._pull_purchases(rejections)
        bought: list[Rejection] = []
        # leaving the block waits for the contact pull, whatever the purchase pull raised
        with ThreadPoolExecutor(1, thread_name_prefix="segsync-contacts") as pool:
            pulling = pool.submit(self._pull_contacts)
            purchases = self._pull_purchases(bought)
            contacts, rejections = pulling.result()
        return contacts, [*rejections, *bought], purchases

    def _check_as_of(self, first: dt.date | None) -> None:
        """Refuse a reference date before every purchase: it empties every purchase segment
        (``as_of = 1800-01-01`` did, with exit 0). A past date after them is backtesting."""
        if self.force_as_of or first is None:
            return
        if self.as_of < first:
            raise ConfigError(
                f"as of {self.as_of} is before this account's first purchase ({first}): every contact "
                "would score as if it had never bought, emptying every purchase segment; use a later "
                "--as-of or [rfm] as_of, or add --force-as-of to score that date anyway; nothing was written"
            )

    # -- observing ------------------------------------------------------------------------

    def _resolve_lists(self, specs: Sequence[ListSpec]) -> None:
        """Find each list by its remembered id (survives renames), else by name, else: to create."""
        known = self.state.remote_ids("list")
        todo = [s for s in specs if s.key not in self.lists]
        found = self._lists_by_id([known[s.key][0] for s in todo if s.key in known])
        for spec in todo:
            remote: RemoteList | None = None
            if spec.key in known:
                list_id = known[spec.key][0]
                remote = found[list_id] if found is not None else self.platform.get_list(list_id)
                if remote is None:
                    log.warning(
                        "%s: list %r was deleted in the CRM; segsync recreates it", self.name, spec.name
                    )
                    self.state.forget_remote_id("list", spec.key)
            if remote is None:
                remote = self.platform.find_list(spec.name)
            if remote is not None and known.get(spec.key) != (remote.id, remote.name):
                self.state.set_remote_id("list", spec.key, remote.id, remote.name)
            self.lists[spec.key] = remote

    def _lists_by_id(self, ids: Sequence[str]) -> Mapping[str, RemoteList | None] | None:
        """The remembered lists in one call where the platform can (else None: one call each)."""
        if not ids or not isinstance(self.platform, ListsById):
            return None
        got = self.platform.get_lists(ids)
        return {i: got.get(i) for i in ids}

    def _observe(self, desired: DesiredState, contacts: Sequence[Contact]) -> Observed:
        remote_fields = dict(self.platform.inspect_fields(desired.fields))
        conflicts: dict[str, str] = {}
        for spec in desired.fields:
            remote = remote_fields.get(spec.key)
            if remote is None:
                continue
            reason = self.platform.field_matches(spec, remote)
            if reason:
                conflicts[spec.key] = reason
            self.state.set_remote_id("field", spec.key, remote.name, remote.name)
        self._resolve_lists(desired.lists)
        members: dict[str, Set[str]] = {}
        for lspec in desired.lists:
            remote_list = self.lists.get(lspec.key)
            if remote_list is None or remote_list.dynamic:
                continue
            if self.platform.memberships_inline:
                members[lspec.key] = {c.id for c in contacts if c.lists and lspec.key in c.lists}
            else:
                members[lspec.key] = self._members(lspec.key, remote_list)
        return Observed(
            values={c.id: c.managed for c in contacts},
            fields=remote_fields,
            conflicts=conflicts,
            lists=dict(self.lists),
            members=members,
            # only addresses read by this job: a cached one may belong to a deleted contact
            emails={c.id: c.email for c in contacts if self.fresh_ids is None or c.id in self.fresh_ids},
        )


def _segment_sizes(desired: DesiredState) -> dict[str, int]:
    segments = getattr(desired, "segments", None)
    if isinstance(segments, Mapping) and segments:
        sizes: dict[str, int] = {}
        for set_key, by_contact in segments.items():
            for seg in by_contact.values():
                if seg is not None:
                    sizes[f"{set_key}.{seg}"] = sizes.get(f"{set_key}.{seg}", 0) + 1
        return dict(sorted(sizes.items()))
    return {k: len(v) for k, v in sorted(desired.members.items())}


def _internal(exc: BaseException) -> str:
    """Text for an unexpected exception: its type only (its text may carry SDK bodies)."""
    return f"internal error ({type(exc).__name__}); run with -vv and report it"
