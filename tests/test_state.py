"""The state store (SQLite, and PostgreSQL where a server can start): schema, ids, values,
purchase cache, jobs, failures, the account lock."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest

from segsync.core.models import ContactUpdate, Purchase, RecordFailure, Rejection
from segsync.core.report import SyncReport
from segsync.errors import JobLocked, StateError
from segsync.sync.state import (
    SCHEMA_VERSION,
    LockOwner,
    StateStore,
    decode_value,
    encode_value,
    scrub,
)
from segsync.testing import FakeWallClock

AS_OF = dt.date(2026, 1, 15)
ME = LockOwner(100, "box")


@pytest.fixture
def wall():
    return FakeWallClock()


@pytest.fixture
def target(segsync_state_target):
    """The store's file, or a fresh PostgreSQL database: every test below runs on both."""
    return segsync_state_target


@pytest.fixture
def store(target, wall):
    with StateStore(target, wall_clock=wall, owner=ME, alive={100}) as s:
        yield s


def other(target, wall, pid, host="box", alive=(100,), **kw):
    return StateStore(target, wall_clock=wall, owner=LockOwner(pid, host), alive=alive, **kw)


def purchase(pid, contact, amount="10.00", modified=1):
    return Purchase(
        id=pid,
        contact_id=contact,
        amount=Decimal(amount),
        currency="USD",
        closed_at=dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC),
        modified_at=dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC) + dt.timedelta(seconds=modified),
    )


# -- file and schema ------------------------------------------------------------------------


def test_schema_is_versioned_and_in_wal_mode(tmp_path):
    StateStore(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_newer_schema_is_refused(tmp_path, wall):
    StateStore(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateError, match="made by a newer segsync"):
        StateStore(tmp_path / "state.db")


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match="move it away and sync again") as err:
        StateStore(path)
    assert str(path) in str(err.value)


def test_data_survives_reopening(target, wall):
    with StateStore(target, wall_clock=wall) as s:
        s.set_remote_id("fake", "acct", "list", "rfm.champions", "42", "segsync · Champions")
    with StateStore(target, wall_clock=wall) as s:
        assert s.remote_ids("fake", "acct", "list") == {"rfm.champions": ("42", "segsync · Champions")}


# -- remote ids and written values ----------------------------------------------------------


def test_remote_ids_are_per_platform_account_and_kind(store):
    store.set_remote_id("fake", "a", "list", "k", "1", "L")
    store.set_remote_id("fake", "b", "list", "k", "2", "L")
    store.set_remote_id("fake", "a", "field", "k", "K", "K")
    store.set_remote_id("fake", "a", "list", "k", "3", "L renamed")
    assert store.remote_ids("fake", "a", "list") == {"k": ("3", "L renamed")}
    assert store.remote_ids("fake", "b", "list") == {"k": ("2", "L")}
    store.forget_remote_id("fake", "a", "list", "k")
    assert store.remote_ids("fake", "a", "list") == {}


@pytest.mark.parametrize(
    "value", [None, "gold", "", "a:b", 7, Decimal("12.50"), Decimal("-0.01"), dt.date(2026, 2, 28)]
)
def test_values_round_trip_with_their_type(value):
    back = decode_value(encode_value(value))
    assert back == value
    assert type(back) is type(value)


def test_values_written_are_kept_per_contact(store):
    store.record_written(
        "fake", "a", 1, [ContactUpdate(contact_id="1", values={"x": Decimal("1.50"), "y": None})]
    )
    store.record_written("fake", "a", 2, [ContactUpdate(contact_id="1", values={"x": Decimal("2")})])
    assert store.written_values("fake", "a") == {"1": {"x": Decimal("2"), "y": None}}


# -- purchase cache ------------------------------------------------------------------------


def test_full_pull_replaces_the_cache_and_clears_a_cursor_it_cannot_set(store):
    store.save_purchases("fake", "a", [purchase("d1", "1")], replace_all=True, cursor=dt.datetime(2025, 1, 1))
    store.save_purchases("fake", "a", [purchase("d2", "2")], replace_all=True, cursor=None)
    assert [p.id for p in store.purchases("fake", "a")] == ["d2"]
    assert store.cursor("fake", "a") is None


def test_incremental_pull_replaces_by_id_and_drops_retracted(store):
    store.save_purchases(
        "fake",
        "a",
        [purchase("d1", "1"), purchase("d1", "2"), purchase("d2", "3"), purchase("d3", "4")],
        replace_all=True,
        cursor=dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
    )
    later = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    # d1 lost contact 2 and changed amount; d2 was retracted; d3 untouched
    store.save_purchases(
        "fake", "a", [purchase("d1", "1", "99.00", 5)], ["d2"], replace_all=False, cursor=later
    )
    got = {(p.id, p.contact_id): p.amount for p in store.purchases("fake", "a")}
    assert got == {("d1", "1"): Decimal("99.00"), ("d3", "4"): Decimal("10.00")}
    assert store.cursor("fake", "a") == later
    cached = store.purchases("fake", "a")[0]
    assert cached.closed_at.tzinfo is not None
    assert cached.modified_at is not None


# -- jobs ----------------------------------------------------------------------------------


def test_job_lifecycle_and_listing(store, wall):
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=True)
    report = SyncReport(job=info, started_at=wall.now(), phase="apply", calls=12, rate_limited=2, retries=3)
    store.update_job(report)
    assert store.job(info.job_id).status == "running"
    wall.advance(90)
    report.status = "succeeded"
    report.finished_at = wall.now()
    report.error = None
    store.finish_job(report)
    job = store.job(info.job_id)
    assert (job.status, job.phase, job.calls, job.rate_limited, job.retries) == (
        "succeeded",
        "apply",
        12,
        2,
        3,
    )
    assert job.full
    assert job.duration == dt.timedelta(seconds=90)
    assert job.report is not None
    assert job.report.calls == 12
    second = store.start_job("fake", "a", as_of=AS_OF, dry_run=True, full=False)
    assert [j.id for j in store.recent_jobs(5)] == [second.job_id, info.job_id]
    assert store.recent_jobs(5, platform="other") == []


@pytest.mark.parametrize(
    ("status", "dry_run", "resumes"),
    [
        ("paused", False, True),
        ("interrupted", False, True),
        ("failed", False, False),
        ("succeeded", False, False),
        ("paused", True, False),
    ],
)
def test_a_job_resumes_a_paused_or_interrupted_one(store, wall, status, dry_run, resumes):
    first = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    store.finish_job(SyncReport(job=first, status=status))
    nxt = store.start_job("fake", "a", as_of=AS_OF, dry_run=dry_run, full=False)
    assert nxt.resumed_from == (first.job_id if resumes else None)


def test_checkpoints_keep_the_last_batch(store):
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    store.checkpoint(info.job_id, "apply", "write_fields batch 1/3", 1, {"contacts_written": 10})
    store.checkpoint(info.job_id, "apply", "write_fields batch 2/3", 2, {"contacts_written": 20})
    cp = store.last_checkpoint(info.job_id)
    assert cp is not None
    assert (cp.step, cp.batches, cp.detail) == ("write_fields batch 2/3", 2, {"contacts_written": 20})
    assert store.last_checkpoint(999) is None


def test_errors_and_reasons_lose_their_email_addresses(store):
    assert scrub("contact ada+shop@example.co.uk not found") == "contact <email> not found"
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    store.record_rejections(info.job_id, [Rejection(kind="contact", record_id="7", reason="dup of bob@x.io")])
    assert store.rejections(info.job_id) == [
        Rejection(kind="contact", record_id="7", reason="dup of <email>")
    ]
    store.finish_job(SyncReport(job=info, status="failed", error="write to jo@example.com refused"))
    assert store.job(info.job_id).error == "write to <email> refused"


# -- per-record failures -------------------------------------------------------------------


def fail(store, job, *ids, reason="invalid value for SEGSYNC_X"):
    failures = [RecordFailure(record_id=i, reason=reason) for i in ids]
    store.record_failures("fake", "a", job, "write", "fields", failures, max_failed_runs=3)


def test_failures_count_runs_and_park_after_the_limit(store):
    fail(store, 1, "c1", "c2")
    fail(store, 1, "c1")  # same run again: still one failed run
    assert {(f.record_id, f.attempts, f.given_up) for f in store.failures()} == {
        ("c1", 1, False),
        ("c2", 1, False),
    }
    fail(store, 2, "c1")
    fail(store, 3, "c1")
    (c1,) = [f for f in store.failures(given_up=True)]
    assert (c1.record_id, c1.attempts) == ("c1", 3)
    assert store.held_records("fake", "a") == {("fields", "c1")}
    assert [f.record_id for f in store.failures(given_up=False)] == ["c2"]
    assert store.release_given_up("fake", "a") == 1
    assert store.held_records("fake", "a") == frozenset()
    assert {f.attempts for f in store.failures()} == {0, 1}


def test_a_record_that_goes_through_is_forgotten(store):
    fail(store, 1, "c1", "c2")
    store.clear_failures("fake", "a", "fields", ["c1"])
    assert [f.record_id for f in store.failures()] == ["c2"]


def test_failures_of_deleted_contacts_are_dropped(store):
    fail(store, 1, "c1", "c2", "c3")
    assert store.forget_failures_except("fake", "a", ["c2"]) == 2
    assert [f.record_id for f in store.failures()] == ["c2"]


def test_failure_reasons_are_scrubbed(store):
    fail(store, 1, "c1", reason="ada@example.com is not a valid value")
    assert store.failures()[0].reason == "<email> is not a valid value"


# -- the account lock ----------------------------------------------------------------------


def test_a_live_lock_refuses_a_second_job(store, target, wall):
    store.acquire_lock("fake", "a")
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    with other(target, wall, 200, alive=(100, 200)) as second, pytest.raises(JobLocked) as err:
        second.acquire_lock("fake", "a")
    text = str(err.value)
    assert f"job {info.job_id}" in text
    assert "pid 100 on box" in text
    assert "fake (a)" in text
    assert store.lock_holder("fake", "a").job_id == info.job_id


def test_the_same_process_cannot_run_two_jobs_on_one_account(store):
    store.acquire_lock("fake", "a")
    with pytest.raises(JobLocked):
        store.acquire_lock("fake", "a")
    store.acquire_lock("fake", "b")


def test_a_dead_owner_on_this_host_is_taken_over_and_its_job_interrupted(store, target, wall):
    store.acquire_lock("fake", "a")
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    with other(target, wall, 200, alive=(200,)) as next_run:
        assert next_run.acquire_lock("fake", "a") == info.job_id
        assert next_run.job(info.job_id).status == "interrupted"
        assert next_run.lock_holder("fake", "a").owner == LockOwner(200, "box")
        resumed = next_run.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
        assert resumed.resumed_from == info.job_id


def test_another_hosts_lock_is_taken_over_only_when_its_heartbeat_is_stale(store, target, wall):
    store.acquire_lock("fake", "a")
    with other(target, wall, 5, host="elsewhere", alive=(), stale_after=600) as remote:
        wall.advance(500)
        with pytest.raises(JobLocked):
            remote.acquire_lock("fake", "a")
        store.heartbeat("fake", "a")
        wall.advance(500)
        with pytest.raises(JobLocked):
            remote.acquire_lock("fake", "a")
        wall.advance(101)
        assert remote.acquire_lock("fake", "a") is None  # no job was attached to the stale lock


def test_only_the_owner_releases_the_lock(store, target, wall):
    store.acquire_lock("fake", "a")
    with other(target, wall, 200, alive=(100, 200)) as second:
        second.release_lock("fake", "a")
        assert store.lock_holder("fake", "a") is not None
    store.release_lock("fake", "a")
    assert store.lock_holder("fake", "a") is None


def test_checkpoints_beat_the_owners_heartbeat(store, wall):
    store.acquire_lock("fake", "a")
    info = store.start_job("fake", "a", as_of=AS_OF, dry_run=False, full=False)
    wall.advance(120)
    store.checkpoint(info.job_id, "apply", "batch 1", 1, {})
    holder = store.lock_holder("fake", "a")
    assert holder is not None
    assert holder.heartbeat_at == wall.now()
    assert store.job(info.job_id).heartbeat_at == wall.now()
