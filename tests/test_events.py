"""The webhook queue in the state store, on both backends: events queued once each, settled
by the sync that started after them, kept across a restart; and replicas sharing one store."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from segsync.cli import main
from segsync.project.app import Project
from segsync.project.loop import RunOutcome, SyncLoop
from segsync.sandbox import demo_dataset
from segsync.sync.state import StateStore
from segsync.sync.webhooks import WebhookEvent
from segsync_hubspot.sandbox import HubSpotSandbox

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
TOKEN = "events-test-token-0123456789"


def events(*keys: str, at: dt.datetime | None = NOW) -> list[WebhookEvent]:
    return [WebhookEvent(key=k, kind="deal.creation", object_id=k, occurred_at=at) for k in keys]


def test_events_are_queued_once_and_settled_up_to_a_sync_start(segsync_state_target):
    with StateStore(segsync_state_target) as store:
        assert store.queue_events("hubspot", events("1", "2", "3"), NOW) == 3
        assert store.queue_events("hubspot", events("3", "4"), NOW) == 1, "a redelivered event is queued once"
        assert store.queue_events("brevo", events("1"), NOW) == 1, "platforms queue apart"
        pending = store.pending_events("hubspot")
        assert (pending.count, pending.oldest) == (4, NOW)
        upto = pending.last_seq
        store.queue_events("hubspot", events("5"), NOW)  # arrives while the sync runs
        lags = store.settle_events("hubspot", upto, NOW + dt.timedelta(seconds=30))
        assert lags == [30.0] * 4
        assert store.pending_events("hubspot").count == 1
        assert store.queue_events("hubspot", events("2"), NOW) == 0, "settled events still recognise a repeat"
    with StateStore(segsync_state_target) as store:  # a restart keeps what waits
        assert store.pending_events("hubspot").count == 1
        assert store.pending_events("brevo").count == 1


def test_a_lag_counts_from_arrival_when_the_crm_gave_no_time(segsync_state_target):
    with StateStore(segsync_state_target) as store:
        store.queue_events("brevo", events("x", at=None), NOW)
        assert store.settle_events("brevo", 10**9, NOW + dt.timedelta(seconds=5)) == [5.0]


def test_settled_events_are_pruned_after_a_week(segsync_state_target):
    with StateStore(segsync_state_target) as store:
        store.queue_events("hubspot", events("old"), NOW)
        store.settle_events("hubspot", 10**9, NOW)
        store.queue_events("hubspot", events("new"), NOW + dt.timedelta(days=8))
        store.settle_events("hubspot", 10**9, NOW + dt.timedelta(days=8))
        assert store.queue_events("hubspot", events("old"), NOW) == 1, "pruned: no longer recognised"


def test_two_replicas_sharing_a_store_never_sync_at_once_and_settle_every_event(
    segsync_state_target, tmp_path: Path, monkeypatch
):
    """Two ``serve`` replicas of one account: each queues what it receives, the account lock
    lets one sync at a time, and every event ends settled."""
    for key in ("SEGSYNC_STATE_PASSWORD", "SEGSYNC_HUBSPOT_APP_SECRET"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    sandbox = HubSpotSandbox(secret=TOKEN)
    sandbox.seed(demo_dataset(dt.date.today(), contacts=200, seed=2))
    sandbox.start()
    monkeypatch.setenv("SEGSYNC_HUBSPOT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SEGSYNC_HUBSPOT_TOKEN", TOKEN)
    monkeypatch.setattr("segsync.project.loop.LOCKED_RETRY", 0.5)  # each try asks the CRM whose account it is
    try:
        assert main(["init", "--platform", "hubspot"]) == 0
        if isinstance(segsync_state_target, str):
            with open("segsync.toml", "a", encoding="utf-8") as fh:
                fh.write(f'\n[state]\nurl = "{segsync_state_target}"\n')
        outcomes: list[RunOutcome] = []
        lock = threading.Lock()

        def heard(outcome: RunOutcome) -> None:
            with lock:
                outcomes.append(outcome)

        loops = [
            SyncLoop(Project(None), ["hubspot"], every=None, debounce=0.3, on_outcome=heard) for _ in "ab"
        ]
        workers = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
        for w in workers:
            w.start()
        for n in range(6):  # deliveries land on either replica, some while a sync runs
            loop = loops[n % 2]
            loop.store.queue_events("hubspot", events(*(f"{n}-{i}" for i in range(50))), NOW)
            loop.wake("hubspot")
            threading.Event().wait(0.15)
        deadline = dt.datetime.now() + dt.timedelta(seconds=90)
        while loops[0].store.pending_events("hubspot").count and dt.datetime.now() < deadline:
            threading.Event().wait(0.1)
        for loop in loops:
            loop.stop.set()
            loop.poke()
        for w in workers:
            w.join(30)
        assert loops[0].store.pending_events("hubspot").count == 0, [o.line() for o in outcomes]
        settled = sum(len(o.lags) for o in outcomes)
        assert settled == 300, "every event settled exactly once"
        jobs = sorted(
            (j for j in loops[0].store.recent_jobs(100) if j.status == "succeeded"),
            key=lambda j: j.started_at,
        )
        assert len(jobs) >= 2
        for before, after in zip(jobs, jobs[1:], strict=False):
            assert before.finished_at is not None
            assert before.finished_at <= after.started_at, "two syncs of the account overlapped"
        for loop in loops:
            loop.close()
    finally:
        sandbox.stop()
