"""The sync loop behind watch and serve, with a stand-in for the sync: what runs when, what a
pause, a failure or a lock does, and which webhook events a sync settles."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest

from segsync.cli import main
from segsync.core.report import JobInfo, SyncReport
from segsync.errors import JobLocked, PlatformError, SyncPaused, SyncStopped
from segsync.project.app import Project
from segsync.project.daemon import parse_interval
from segsync.project.loop import RunOutcome, SyncLoop
from segsync.sync.webhooks import WebhookEvent

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--platform", "hubspot"]) == 0
    return Project(None)


def report(job: int = 1) -> SyncReport:
    return SyncReport(job=JobInfo(job_id=job, platform="hubspot", as_of=NOW.date()), status="succeeded")


class Script:
    """A stand-in sync: each call takes the next step (a report, or an exception to raise)."""

    def __init__(self, *steps: object, during: Callable[[], None] | None = None) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.during = during

    def __call__(self, name: str, should_stop: Callable[[], bool]) -> SyncReport:
        self.calls += 1
        if self.during is not None:
            self.during()
        step = self.steps.pop(0) if self.steps else report(self.calls)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, SyncReport)
        return step


def events(*keys: str) -> list[WebhookEvent]:
    return [WebhookEvent(key=k, kind="deal.creation", object_id=k, occurred_at=NOW) for k in keys]


def run_until(loop: SyncLoop, outcomes: list[RunOutcome], count: int, timeout: float = 20.0) -> None:
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout
    while len(outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.stop.set()
    loop.poke()
    worker.join(10)
    assert len(outcomes) >= count, [o.line() for o in outcomes]


def test_a_burst_of_events_is_one_sync_after_the_quiet_spell(project):
    outcomes: list[RunOutcome] = []
    script = Script()
    loop = SyncLoop(project, ["hubspot"], every=None, debounce=0.3, sync=script, on_outcome=outcomes.append)
    for n in range(0, 1000, 100):  # ten deliveries of a hundred, each waking the loop
        loop.store.queue_events("hubspot", events(*(str(n + i) for i in range(100))), NOW)
        loop.wake("hubspot")
    run_until(loop, outcomes, 1)
    time.sleep(0.4)
    assert script.calls == 1
    assert len(outcomes[0].lags) == 1000
    assert outcomes[0].trigger == "events"
    assert loop.store.pending_events("hubspot").count == 0
    loop.close()


def test_events_that_arrive_during_a_sync_wait_for_the_next(project):
    outcomes: list[RunOutcome] = []
    loop: SyncLoop

    def arrive() -> None:
        if script.calls == 1:
            loop.store.queue_events("hubspot", events("late"), NOW)
            loop.wake("hubspot")

    script = Script(during=arrive)
    loop = SyncLoop(project, ["hubspot"], every=None, debounce=0.05, sync=script, on_outcome=outcomes.append)
    loop.store.queue_events("hubspot", events("early"), NOW)
    loop.wake("hubspot")
    run_until(loop, outcomes, 2)
    assert [len(o.lags) for o in outcomes[:2]] == [1, 1], "each sync settles only what came before it"
    loop.close()


def test_a_failed_sync_keeps_its_events_and_retries_after_a_backoff(project, monkeypatch):
    monkeypatch.setattr("segsync.project.loop.FIRST_BACKOFF", 0.2)
    outcomes: list[RunOutcome] = []
    script = Script(PlatformError("500 from the CRM", platform="hubspot", operation="deals.search"))
    loop = SyncLoop(project, ["hubspot"], every=None, debounce=0.0, sync=script, on_outcome=outcomes.append)
    loop.store.queue_events("hubspot", events("a", "b"), NOW)
    loop.wake("hubspot")
    run_until(loop, outcomes, 2)
    failed, succeeded = outcomes[:2]
    assert failed.status == "failed"
    assert "deals.search" in failed.line()
    assert "trying again in" in failed.line()
    assert succeeded.status == "succeeded"
    assert len(succeeded.lags) == 2, "the failed sync settled nothing; the retry settled both"
    loop.close()


def test_a_paused_sync_waits_for_its_budget_and_goes_on(project):
    outcomes: list[RunOutcome] = []
    script = Script(SyncPaused("brevo: hourly budget spent", resume_after=0.4))
    loop = SyncLoop(project, ["hubspot"], every=60.0, sync=script, on_outcome=outcomes.append)
    run_until(loop, outcomes, 2)
    paused, resumed = outcomes[:2]
    assert paused.status == "paused"
    assert "going on in" in paused.line()
    assert resumed.status == "succeeded"
    loop.close()


def test_a_sync_another_process_runs_is_skipped_and_tried_again(project, monkeypatch):
    monkeypatch.setattr("segsync.project.loop.LOCKED_RETRY", 0.1)
    outcomes: list[RunOutcome] = []
    script = Script(JobLocked("another segsync process is syncing hubspot"))
    loop = SyncLoop(project, ["hubspot"], every=60.0, sync=script, on_outcome=outcomes.append)
    run_until(loop, outcomes, 2)
    assert [o.status for o in outcomes[:2]] == ["locked", "succeeded"]
    loop.close()


def test_a_stop_request_reaches_the_running_sync(project):
    outcomes: list[RunOutcome] = []
    asked: list[bool] = []

    def sync(name: str, should_stop: Callable[[], bool]) -> SyncReport:
        loop.stop.set()  # SIGTERM arrives mid-sync
        asked.append(should_stop())
        raise SyncStopped("stopped as asked")

    loop = SyncLoop(project, ["hubspot"], every=60.0, sync=sync, on_outcome=outcomes.append)
    loop.run()
    assert asked == [True]
    assert [o.status for o in outcomes] == ["stopped"]
    loop.close()


def test_an_internal_error_is_a_failed_run_whose_text_is_withheld(project):
    outcomes: list[RunOutcome] = []
    script = Script(KeyError("contact ann@example.com"))
    loop = SyncLoop(project, ["hubspot"], every=60.0, sync=script, on_outcome=outcomes.append)
    run_until(loop, outcomes, 1)
    assert outcomes[0].status == "failed"
    assert "KeyError" in outcomes[0].line()
    assert "ann@example.com" not in outcomes[0].line()
    loop.close()


def test_events_queued_before_a_restart_wake_the_new_loop(project):
    first = SyncLoop(project, ["hubspot"], every=None, sync=Script())
    first.store.queue_events("hubspot", events("x"), NOW)
    first.close()
    outcomes: list[RunOutcome] = []
    again = SyncLoop(
        project, ["hubspot"], every=None, debounce=0.05, sync=Script(), on_outcome=outcomes.append
    )
    run_until(again, outcomes, 1)
    assert outcomes[0].trigger == "events"
    assert len(outcomes[0].lags) == 1
    again.close()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("90", 90), ("0.5s", 0.5)]
)
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "5 minutes", "", "1w"])
def test_bad_intervals_are_config_errors(text):
    from segsync.errors import ConfigError

    with pytest.raises(ConfigError, match="positive interval"):
        parse_interval(text)
