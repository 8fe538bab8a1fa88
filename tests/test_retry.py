"""The one retry layer and the throttle (segsync.sync.runner.CallRunner), on a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segsync.errors import (
    AuthError,
    ConflictError,
    PermanentError,
    PermissionDenied,
    RateLimited,
    SyncPaused,
    TransientError,
)
from segsync.sync.runner import CallRunner, RateWindow, RetryPolicy
from segsync.testing import FakeClock


class Script:
    """A call that raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def runner(clock: FakeClock, **policy: float) -> CallRunner:
    return CallRunner("test", policy=RetryPolicy(**policy), clock=clock, rng=random.Random(3))


def test_429_with_retry_after_waits_exactly_that_long():
    clock = FakeClock()
    r = runner(clock)
    fn = Script(RateLimited("slow down", retry_after=2), RateLimited("slow down", retry_after=2))
    assert r.call("contacts.update", fn, write=True) == "ok"
    assert clock.sleeps == [2.0, 2.0]
    assert fn.calls == 3
    assert (r.stats.calls, r.stats.writes, r.stats.retries, r.stats.rate_limited) == (3, 3, 2, 2)
    assert r.stats.per_operation["contacts.update"] == 3


@pytest.mark.parametrize(
    "error",
    [TransientError("503", status=503), TransientError("timed out"), RateLimited("no header")],
    ids=["5xx", "timeout", "429-without-retry-after"],
)
def test_retriable_errors_back_off_with_jitter_under_a_growing_ceiling(error):
    clock = FakeClock()
    r = runner(clock, backoff_initial=0.5, backoff_max=3.0)
    fn = Script(*[error] * 4)
    assert r.call("op", fn) == "ok"
    assert len(clock.sleeps) == 4
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0 <= slept <= min(3.0, 0.5 * 2 ** (attempt - 1))
    assert len(set(clock.sleeps)) > 1, "full jitter: waits differ"


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("bad request", status=400),
        AuthError("bad token", status=401),
        PermissionDenied("no", required_scopes=["crm.lists.write"]),
        ConflictError("exists", status=409),
        ValueError("a bug"),
    ],
)
def test_non_retriable_errors_are_raised_at_once(error):
    clock = FakeClock()
    r = runner(clock)
    fn = Script(error)
    with pytest.raises(type(error)):
        r.call("op", fn)
    assert fn.calls == 1
    assert clock.sleeps == []


def test_attempts_are_bounded():
    clock = FakeClock()
    r = runner(clock, max_attempts=3)
    fn = Script(*[TransientError("boom")] * 10)
    with pytest.raises(TransientError):
        r.call("op", fn)
    assert fn.calls == 3


def test_total_time_is_bounded_without_sleeping_past_it():
    clock = FakeClock()
    r = runner(clock, max_attempts=50, max_total_seconds=10, backoff_initial=4, backoff_max=4)
    fn = Script(*[TransientError("503", status=503)] * 50)
    with pytest.raises(TransientError):
        r.call("op", fn)
    assert clock.slept <= 10
    assert fn.calls >= 3  # jittered waits of at most 4 s: at least two fit in 10 s


def test_a_retry_after_beyond_the_total_budget_pauses_instead_of_failing():
    # 600 s is within max_rate_wait but over max_total_seconds, which bounds every wait between
    # attempts (issue 7): the CRM said when to come back, so the job pauses until then.
    clock = FakeClock()
    r = runner(clock, max_total_seconds=300, max_rate_wait=900)
    with pytest.raises(SyncPaused) as err:
        r.call("deals.page", Script(RateLimited("daily", retry_after=600)))
    assert err.value.resume_after == 600
    assert "max_total_seconds (300 s)" in str(err.value)
    assert clock.sleeps == []


def test_a_retry_after_within_the_total_budget_is_waited_for():
    clock = FakeClock()
    r = runner(clock, max_total_seconds=300, max_rate_wait=900)
    assert r.call("deals.page", Script(RateLimited("secondly", retry_after=200))) == "ok"
    assert clock.sleeps == [200.0]


def test_a_429_storm_ends_within_max_total_seconds():
    """Regression: 429 waits did not count toward the total, so a storm ran for attempts x wait."""
    clock = FakeClock()
    r = runner(clock, max_attempts=1000, max_total_seconds=30)
    fn = Script(*[RateLimited("busy", retry_after=10)] * 1000)
    with pytest.raises(SyncPaused):
        r.call("op", fn)
    assert clock.slept <= 30
    assert fn.calls == 4  # 3 waits of 10 s fit in 30 s


def test_rate_limit_waits_are_still_bounded_by_attempts():
    clock = FakeClock()
    r = runner(clock, max_attempts=4, max_total_seconds=10)
    fn = Script(*[RateLimited("busy", retry_after=3)] * 50)
    with pytest.raises(RateLimited):
        r.call("op", fn)
    assert fn.calls == 4
    assert clock.sleeps == [3.0, 3.0, 3.0]


def test_retry_after_beyond_max_rate_wait_pauses_the_job():
    clock = FakeClock()
    r = runner(clock, max_rate_wait=60)
    with pytest.raises(SyncPaused) as err:
        r.call("deals.page", Script(RateLimited("hourly", retry_after=1800)))
    assert err.value.resume_after == 1800
    assert err.value.exit_code == 75
    assert "30 min" in str(err.value)
    assert clock.sleeps == []


def test_throttle_spaces_calls_to_the_window():
    clock = FakeClock()
    r = CallRunner("t", buckets={"b": [RateWindow(requests=3, seconds=10)]}, clock=clock)
    for _ in range(7):
        r.call("op", Script(), bucket="b")
    assert clock.sleeps == [10.0, 10.0]
    assert r.stats.waited_seconds == 20


def test_throttle_pauses_instead_of_waiting_longer_than_max_rate_wait():
    clock = FakeClock()
    r = CallRunner(
        "t",
        policy=RetryPolicy(max_rate_wait=60),
        buckets={"hourly": [RateWindow(requests=2, seconds=3600)]},
        clock=clock,
    )
    r.call("op", Script(), bucket="hourly")
    r.call("op", Script(), bucket="hourly")
    with pytest.raises(SyncPaused) as err:
        r.call("op", Script(), bucket="hourly")
    assert err.value.resume_after == pytest.approx(3600)
    assert "'hourly' rate budget is spent" in str(err.value)


def test_observed_rate_headers_hold_the_bucket():
    clock = FakeClock()
    r = runner(clock)
    r.observe("b", remaining=0, reset_after=5)
    r.call("op", Script(), bucket="b")
    assert clock.sleeps == [5.0]
    r.observe("b", remaining=3, reset_after=5)
    r.call("op", Script(), bucket="b")
    assert clock.sleeps == [5.0]


def test_a_429_holds_the_bucket_for_other_calls_too():
    clock = FakeClock()
    r = runner(clock)
    r.call("a", Script(RateLimited("busy", retry_after=4)), bucket="b")
    assert clock.sleeps == [4.0]
    r.call("b", Script(), bucket="b")
    assert clock.sleeps == [4.0], "the CRM's wait was served once"


def test_at_most_once_does_not_resend_after_an_ambiguous_failure():
    clock = FakeClock()
    r = runner(clock)
    create = Script(TransientError("lost response"))
    with r.at_most_once(), pytest.raises(TransientError):
        r.call("lists.create", create, write=True)
    assert create.calls == 1
    refused = Script(RateLimited("busy", retry_after=1))
    with r.at_most_once():
        assert r.call("lists.create", refused, write=True) == "ok"
    assert refused.calls == 2, "a 429 was not processed: safe to send again"
    again = Script(TransientError("503"))
    assert r.call("lists.get", again) == "ok", "outside the block, retries are back"


def test_retrying_repeats_a_multi_call_step_without_counting_it():
    clock = FakeClock()
    r = runner(clock)
    step = Script(TransientError("lost"), TransientError("lost"))
    assert r.retrying("ensure list", step) == "ok"
    assert step.calls == 3
    assert r.stats.calls == 0
    assert r.stats.retries == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_attempts", 0), ("backoff_initial", 0), ("max_total_seconds", -1), ("unknown", 1)],
)
def test_policy_rejects_bad_values(field, value):
    with pytest.raises(ValidationError):
        RetryPolicy(**{field: value})


def test_stats_are_reported_per_bucket():
    clock = FakeClock()
    r = CallRunner("t", buckets={"contacts": [RateWindow(requests=100, seconds=1)]}, clock=clock)
    r.call("contacts.page", Script(), bucket="contacts")
    r.call("lists.create", Script(), bucket="other", write=True)
    assert r.stats.as_dict()["per_bucket"] == {"contacts": 1, "other": 1}
    assert r.budget_windows("contacts") == [RateWindow(requests=100, seconds=1)]
    assert r.budget_windows("other") == []


def _scan_wait(windows: list[RateWindow], sent: list[float], now: float) -> float:
    """The throttle's wait by a plain scan of every call: the reference the log is held to."""
    wait = 0.0
    for w in windows:
        inside = [t for t in sent if now - t < w.seconds]
        if len(inside) >= w.requests:
            wait = max(wait, inside[len(inside) - w.requests] + w.seconds - now)
    return wait


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 40), min_size=1, max_size=300),
    windows=st.lists(st.tuples(st.integers(1, 20), st.integers(1, 600)), min_size=1, max_size=3),
)
def test_the_throttle_log_waits_exactly_as_a_scan_of_every_call(gaps, windows):
    from segsync.sync.runner import _Bucket

    rate = [RateWindow(requests=n, seconds=s / 10) for n, s in windows]
    bucket, sent, now = _Bucket(rate), [], 0.0
    for gap in gaps:
        now += gap / 10
        assert bucket.wait_needed(now) == pytest.approx(_scan_wait(rate, sent, now), abs=1e-9)
        bucket.record(now)
        sent.append(now)


def test_the_throttle_log_drops_calls_older_than_its_longest_window():
    from segsync.sync.runner import _Bucket

    bucket = _Bucket([RateWindow(requests=100, seconds=10)])
    for i in range(20_000):
        bucket.wait_needed(float(i))
        bucket.record(float(i))
    assert len(bucket.sent) - bucket.start <= 11
    assert len(bucket.sent) < 10_000  # the list itself is cut back, not only its start moved


def test_calls_from_several_threads_never_overrun_a_window():
    """The throttle's check and its record are one step: eight threads that all see room in
    the same instant do not all go."""
    import threading
    import time

    from segsync.sync.runner import SimulatedClock

    class Yielding(SimulatedClock):
        def now(self) -> float:
            time.sleep(0.0001)  # let another thread run between any two steps
            return super().now()

    clock = Yielding()
    r = CallRunner("t", buckets={"b": [RateWindow(requests=5, seconds=1.0)]}, clock=clock)
    sent: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        with lock:
            sent.append(clock.now())

    def worker() -> None:
        for _ in range(10):
            r.call("op", send, bucket="b")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == r.stats.calls == r.stats.per_operation["op"] == 80
    # the moments the throttle let each call go (a simulated sleep in one thread moves the
    # clock under the others, so the moments the calls read the clock say less)
    let_go = sorted(r._bucket("b").sent)
    assert len(let_go) == 80
    assert all(let_go[i + 5] - let_go[i] >= 1.0 - 1e-6 for i in range(75)), "six calls in one window"


def test_a_call_counts_in_its_window_from_when_it_ended():
    """The CRM counts a call when it arrives; the throttle counts it from its answer, so latency
    cannot push a call into a one-second window the CRM still sees full."""
    clock = FakeClock()
    r = CallRunner("test", buckets={"search": [RateWindow(requests=2, seconds=1.0)]}, clock=clock)
    sent = []

    def slow() -> str:
        sent.append(clock.now())
        clock.advance(0.3)  # the call takes 0.3 s to answer
        return "ok"

    start = clock.now()
    for _ in range(3):
        r.call("deals.search", slow, bucket="search")
    # the first ended at 0.3 s: the third may go one window after that, not after its start
    assert [t - start for t in sent] == [0.0, pytest.approx(0.3), pytest.approx(1.3)]
