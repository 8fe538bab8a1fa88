"""A first sync of a 20,000-contact account on Brevo's base tier: 100 calls an hour for deals,
import status and the rest; through the engine, the SDK and the sandbox, on a fake clock.

Once with a short ``max_rate_wait``: every run pauses when the hour's budget is spent and the
next run (an hour later) resumes from the engine's checkpoints. Once with a long one: a single
run waits through the windows. Both end with the same CRM, and a resync writes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from segsync import CallRunner, RetryPolicy, SyncPaused
from segsync.sandbox import SeedData, demo_dataset
from segsync.sync.state import StateStore
from segsync.testing import FakeClock, StateFile
from segsync.testing.reliability import standard_spec
from segsync_brevo.config import OTHER, BrevoSettings
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import KEY

AS_OF = dt.date(2026, 1, 15)
CONTACTS = 20_000
DEALS = 6_000  # 120 pages of 50: more than an hour of the base tier's 100 calls


@pytest.fixture(scope="module")
def store_data() -> SeedData:
    data = demo_dataset(AS_OF, contacts=CONTACTS)
    return SeedData(data.contacts, data.purchases[:DEALS])


@pytest.fixture(scope="module")
def spec():
    return standard_spec()


class Account:
    """One sandbox account and the state file of the project syncing it."""

    def __init__(
        self, data: SeedData, workdir: Path, other_per_hour: int | None = None, **sandbox: Any
    ) -> None:
        self.clock = FakeClock()
        self.other_per_hour = other_per_hour
        sandbox["other_per_hour"] = other_per_hour
        self.sandbox = BrevoSandbox(secret=KEY, clock=self.clock, **sandbox)  # base ("general") tier
        self.sandbox.seed(data)
        self.sandbox.start()
        self.state = StateFile(workdir / "state.db", clock=self.clock)
        self.pid = 40_000
        self.pauses: list[float] = []

    def sync(self, spec, max_rate_wait: float) -> Any:
        """One ``segsync sync`` as a new process; None when it paused (the wait is in ``pauses``)."""
        self.pid += 1
        settings = BrevoSettings(base_url=self.sandbox.base_url, other_per_hour=self.other_per_hour)
        policy = RetryPolicy(max_rate_wait=max_rate_wait)
        runner = CallRunner(
            "brevo",
            policy=policy,
            buckets=BrevoPlatform.rate_buckets(settings),
            clock=self.clock,
            rng=random.Random(self.pid),
        )
        platform = BrevoPlatform.create(settings, secret=SecretStr(KEY), runner=runner)
        try:
            return self.state.sync(platform, spec=spec, account="budget", as_of=AS_OF)
        except SyncPaused as paused:
            self.pauses.append(paused.resume_after)
            return None
        finally:
            platform.close()

    def until_done(self, spec: Any, runs: int = 8) -> Any:
        """Sync with a short ``max_rate_wait``, an hour later each time it pauses."""
        for _ in range(runs):
            done = self.sync(spec, max_rate_wait=120)
            if done is not None:
                return done
            assert self.pauses[-1] > 120
            self.clock.advance(self.pauses[-1])
        raise AssertionError(f"still paused after {len(self.pauses)} runs")

    def ledger(self) -> dict[tuple[str, str], Any]:
        with StateStore(self.state.path) as store:
            return {(p.id, p.contact_id): (p.amount, p.closed_at) for p in store.purchases("brevo", "budget")}

    def stop(self) -> None:
        self.sandbox.stop()


def test_a_first_sync_of_20k_contacts_spans_budget_windows_then_a_resync_writes_nothing(
    store_data, spec, tmp_path
):
    paused = Account(store_data, tmp_path / "paused")
    waiting = Account(store_data, tmp_path / "waiting")
    try:
        # 1. Pause and resume: each run spends at most the hour's budget, then checkpoints.
        done = paused.until_done(spec, runs=6)
        assert done.report.status == "succeeded"
        assert paused.pauses, "the base tier's hour cannot hold this first sync"
        jobs = paused.state.jobs(10)
        assert [j.status for j in reversed(jobs)] == ["paused"] * len(paused.pauses) + ["succeeded"]
        assert paused.sandbox.rate_limited <= 1, "at most the 429 that revealed the limit"

        # 2. One run that waits through the windows instead.
        result = waiting.sync(spec, max_rate_wait=7200)
        assert result is not None
        assert result.report.status == "succeeded"
        assert waiting.clock.slept >= 3000, "it waited for the hourly budget to come back"
        assert waiting.sandbox.rate_limited == 0, "one runner knows the windows: no 429 at all"
        other = waiting.sandbox.calls_by_bucket[OTHER]
        assert other > 100

        # Same data, same CRM in the end.
        want = waiting.sandbox.snapshot()
        got = paused.sandbox.snapshot()
        assert got == want
        assert len(want["fields"]) > CONTACTS * 0.9
        assert sum(len(m) for m in want["lists"].values()) > 0

        # 3. Nothing changed: the resync writes nothing (and spends no import polls).
        calls_before = dict(waiting.sandbox.calls_by_bucket)
        imports_before = len(waiting.sandbox.processes)
        again = waiting.sync(spec, max_rate_wait=7200)
        assert again is not None
        assert again.plan is not None
        assert not again.plan.writes_anything, again.plan.describe()
        assert again.report.write_calls == 0
        assert len(waiting.sandbox.processes) == imports_before, "no import, so no status polls"
        # pipelines, the deal catalogue and the deals changed since the cursor: a handful
        assert waiting.sandbox.calls_by_bucket[OTHER] - calls_before[OTHER] < 10
    finally:
        paused.stop()
        waiting.stop()


def test_a_first_sync_finishes_across_budget_windows_when_brevo_ignores_the_deal_sort(
    store_data, spec, tmp_path
):
    """Brevo may answer deals in creation order whatever ``sortBy`` says: no modification cursor
    is then safe mid-pull, and a pull that needs more than an hour's budget restarted from
    nothing every hour, forever. The pull's page token, saved with each chunk, lets it finish."""
    # 60 calls an hour: the deals' 120 pages need more than two hours of budget
    ignoring = Account(store_data, tmp_path / "ignoring", other_per_hour=60, honour_deal_sort=False)
    sorted_ = Account(store_data, tmp_path / "sorted", other_per_hour=60)
    for account in (ignoring, sorted_):  # a store integration touched every other deal, newest first
        deals = sorted(account.sandbox.state.deals.values(), key=lambda d: d.created, reverse=True)
        for i, deal in enumerate(deals[::2]):
            deal.updated = account.sandbox.now() + dt.timedelta(seconds=i)
    try:
        done = ignoring.until_done(spec)
        assert done.report.status == "succeeded"
        assert len(ignoring.pauses) >= 2, "the deal pull itself spans budget windows"
        with StateStore(ignoring.state.path) as store:
            assert store.pull_state("brevo", "budget") is None, "the finished pull left no token"
            assert store.ledger_counts("brevo", "budget")["pending"] == 0
        sorted_.until_done(spec)
        assert ignoring.ledger() == sorted_.ledger()
        assert len(ignoring.ledger()) > DEALS * 0.9  # the won ones, less the broken records
        assert ignoring.sandbox.snapshot() == sorted_.sandbox.snapshot()

        # The next sync pulls from the cursor the finished pull left, and writes nothing.
        again = ignoring.sync(spec, max_rate_wait=7200)
        assert again is not None
        assert again.plan is not None
        assert not again.plan.writes_anything, again.plan.describe()
    finally:
        ignoring.stop()
        sorted_.stop()
