"""The one retry layer, and the per-account throttle.

Every CRM call a plugin makes goes through :meth:`CallRunner.call`. SDK retries are off, so
this is the only place a call is repeated. The runner:

* waits, before sending, until every rate window of the call's bucket has room (client-side
  throttle, so 429s stay rare), and pauses the job with :class:`SyncPaused` instead of waiting
  longer than ``RetryPolicy.max_rate_wait``;
* retries :class:`RetriableError` (429, 5xx, timeouts, dropped connections) with tenacity:
  the CRM's own wait when it said one, else exponential backoff with full jitter; bounded by
  attempts and by total time; never retries anything else;
* counts calls, writes, retries and 429s per operation for job records and ``segsync plan``.

Time is injected (:class:`Clock`), so tests run instantly and assert the exact waits.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import tenacity
from pydantic import BaseModel, ConfigDict, Field

from segsync.core.cost import RateWindow as RateWindow  # re-exported: part of the runner's API
from segsync.core.text import human_duration
from segsync.errors import RateLimited, RetriableError, SyncPaused, retriable

log = logging.getLogger("segsync.retry")  # a stable name for log filters
T = TypeVar("T")


class Clock(Protocol):
    """Monotonic seconds plus a way to wait. Tests pass a fake that only advances a number."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """Time that moves only when something sleeps: sleeps are instant and recorded.

    The demo runs a whole sync under a sandbox's real rate limits in seconds with it, and tests
    share one between a runner and a sandbox so every wait is exact and assertable.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        """Let time pass without recording a sleep (another process, the night, ...)."""
        with self._lock:
            self._now += seconds

    @property
    def slept(self) -> float:
        """Total seconds slept."""
        with self._lock:
            return sum(s for s in self.sleeps if s > 0)


class SimulatedWallClock:
    """Wall time that follows a :class:`SimulatedClock`: ``start`` plus however far it moved.

    A sync that waits an hour for a rate budget on simulated time also ends an hour later on
    this clock, so job records show the time the rate limits imposed.
    """

    def __init__(self, clock: SimulatedClock, start: dt.datetime) -> None:
        self.clock = clock
        self._origin = clock.now()
        self._start = start

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self.clock.now() - self._origin)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


class RetryPolicy(BaseModel):
    """How each CRM call is retried. Every knob is settable under ``[retry]`` in segsync.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(6, ge=1, description="attempts per call, the first included")
    max_total_seconds: float = Field(300.0, gt=0, description="give up on a call after this long")
    backoff_initial: float = Field(0.5, gt=0, description="first backoff ceiling, seconds")
    backoff_max: float = Field(60.0, gt=0, description="largest single backoff, seconds")
    max_rate_wait: float = Field(
        900.0,
        ge=0,
        description="longest wait for a rate budget before the job checkpoints and pauses",
    )
    max_failed_runs: int = Field(
        3,
        ge=1,
        description="syncs a record may fail before it is parked (sync --retry-failed tries it again)",
    )


@dataclass
class CallStats:
    calls: int = 0
    writes: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    per_operation: Counter[str] = field(default_factory=Counter)
    per_bucket: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "writes": self.writes,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "waited_seconds": round(self.waited_seconds, 3),
            "per_operation": dict(self.per_operation),
            "per_bucket": dict(self.per_bucket),
        }


#: A wait this small is none: rounding, not a full window.
_EPSILON = 1e-6


class _Bucket:
    """Sliding-window log for one rate bucket, plus a "blocked until" from the CRM's headers.

    The log is a sorted list with a moving start: a call's check is one binary search per
    window, O(log n) however many calls a day's window holds (a scan was O(n), quadratic over
    a job).
    """

    def __init__(self, windows: Sequence[RateWindow]) -> None:
        self.windows = list(windows)
        self.sent: list[float] = []
        self.start = 0
        self.blocked_until = 0.0
        self.longest = max((w.seconds for w in self.windows), default=0.0)
        self.lock = threading.Lock()

    def record(self, now: float) -> None:
        if self.sent and now < self.sent[-1]:
            bisect.insort(self.sent, now, lo=self.start)  # a clock read out of order by threads
        else:
            self.sent.append(now)

    def settle(self, reserved: float, done: float) -> None:
        """A call reserved at ``reserved`` ended at ``done``: count it from then. The CRM counts
        a call when it arrives, later than the reservation; counting from the answer keeps the
        next call out of a window the CRM still sees full (a one-second search window is overrun
        by the latency alone). The entry is near the end, so this is cheap however long the log."""
        if done <= reserved:
            return
        sent = self.sent
        i = bisect.bisect_left(sent, reserved, lo=self.start)
        if i < len(sent) and sent[i] == reserved:
            del sent[i]
            self.record(done)

    def wait_needed(self, now: float) -> float:
        sent = self.sent
        # calls older than the longest window never count again: drop them, in bulk
        self.start = bisect.bisect_right(sent, now - self.longest, lo=self.start)
        if self.start > 4096 and self.start * 2 > len(sent):
            del sent[: self.start]
            self.start = 0
        wait = max(0.0, self.blocked_until - now)
        for w in self.windows:
            first = bisect.bisect_right(sent, now - w.seconds, lo=self.start)
            if len(sent) - first >= w.requests:
                # The oldest call that must leave the window before one more fits.
                oldest = sent[len(sent) - w.requests]
                wait = max(wait, oldest + w.seconds - now)
        return wait


class CallRunner:
    """Runs one CRM call at a time through throttle and retry. One runner per account and job.

    ``buckets`` maps a bucket name to its rate windows; calls name their bucket (HubSpot uses
    one, Brevo several). An unknown bucket name is unthrottled but still retried.
    """

    def __init__(
        self,
        platform: str,
        *,
        policy: RetryPolicy | None = None,
        buckets: Mapping[str, Sequence[RateWindow]] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.platform = platform
        self.policy = policy or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self.stats = CallStats()
        self._rng = rng or random.Random()
        self._buckets = {name: _Bucket(w) for name, w in (buckets or {}).items()}
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- throttle -------------------------------------------------------------------------

    def _bucket(self, name: str) -> _Bucket:
        with self._lock:
            if name not in self._buckets:
                self._buckets[name] = _Bucket(())
            return self._buckets[name]

    def wait_for_budget(self, bucket: str, operation: str) -> None:
        """Sleep until ``bucket`` has room, or raise SyncPaused if that is too far away."""
        self._until_room(bucket, operation, reserve=False)

    def _until_room(self, bucket: str, operation: str, *, reserve: bool) -> float | None:
        """Wait for room in ``bucket``; with ``reserve``, take it: the check and the record are
        one step under the bucket's lock, so calls sent from several threads never overrun a
        window (two that both saw room would both have gone)."""
        b = self._bucket(bucket)
        while True:
            with b.lock:
                now = self.clock.now()
                wait = b.wait_needed(now)
                if wait <= _EPSILON:  # what a float clock leaves after sleeping the exact wait
                    if reserve:
                        b.record(now)
                    return now
            if wait > self.policy.max_rate_wait:
                raise SyncPaused(
                    f"{self.platform}: the {bucket!r} rate budget is spent (next call {operation}); "
                    f"it refills in about {human_duration(wait)}. "
                    "Progress is saved: run the same command again then.",
                    resume_after=wait,
                )
            log.debug("%s: waiting %.2fs for the %s budget", self.platform, wait, bucket)
            with self._lock:
                self.stats.waited_seconds += wait
            self.clock.sleep(wait)
            if not reserve:
                return None

    def _settle(self, bucket: str, reserved: float | None) -> None:
        if reserved is not None:
            b = self._bucket(bucket)
            with b.lock:
                b.settle(reserved, self.clock.now())

    def observe(
        self,
        bucket: str,
        *,
        remaining: int | None = None,
        reset_after: float | None = None,
    ) -> None:
        """Feed back the CRM's rate-limit headers: with nothing remaining, hold the bucket."""
        if remaining is not None and remaining <= 0 and reset_after is not None and reset_after > 0:
            b = self._bucket(bucket)
            b.blocked_until = max(b.blocked_until, self.clock.now() + reset_after)

    def budget_windows(self, bucket: str) -> list[RateWindow]:
        return list(self._bucket(bucket).windows)

    # -- retry ----------------------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return max(0.0, exc.retry_after)
        ceiling = min(self.policy.backoff_max, self.policy.backoff_initial * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(0, ceiling)

    def call(self, operation: str, fn: Callable[[], T], *, bucket: str = "default", write: bool = False) -> T:
        """Run ``fn`` (one SDK call whose errors are already segsync errors) with retries.

        Inside :meth:`at_most_once`, a :class:`TransientError` is not retried here: the CRM may
        have applied the call, and the caller (an ensure-step) must look before sending it again.
        """
        policy = self.policy
        blind_retry_ok = not getattr(self._local, "at_most_once", False)

        def should_retry(exc: BaseException) -> bool:
            return retriable(exc) and (blind_retry_ok or isinstance(exc, RateLimited))

        rate_waited = [0.0]

        def attempt() -> T:
            before = self.clock.now()
            reserved = self._until_room(bucket, operation, reserve=True)
            rate_waited[0] += self.clock.now() - before
            with self._lock:  # calls may come from several threads (concurrent batches)
                self.stats.calls += 1
                self.stats.per_operation[operation] += 1
                self.stats.per_bucket[bucket] += 1
                if write:
                    self.stats.writes += 1
            try:
                return fn()
            except RateLimited as exc:
                with self._lock:
                    self.stats.rate_limited += 1
                if exc.retry_after is not None:
                    if exc.retry_after > policy.max_rate_wait:
                        raise SyncPaused(
                            f"{self.platform}: {operation} was rate limited for "
                            f"{human_duration(exc.retry_after)}; "
                            "progress is saved: run the same command again then.",
                            resume_after=exc.retry_after,
                        ) from None
                    b = self._bucket(bucket)
                    b.blocked_until = max(b.blocked_until, self.clock.now() + exc.retry_after)
                raise
            finally:
                self._settle(bucket, reserved)

        retrying = self._retrying(operation, should_retry, rate_waited)
        try:
            return retrying(attempt)
        except RateLimited as exc:
            if exc.retry_after is None or retrying.statistics.get("attempt_number", 0) >= policy.max_attempts:
                raise  # out of attempts: the CRM keeps refusing, and that is the error
            raise self._out_of_time(operation, exc.retry_after) from None

    def _out_of_time(self, operation: str, retry_after: float) -> SyncPaused:
        """Still rate limited when ``max_total_seconds`` ran out, with the CRM's wait known: pause
        the job (it is checkpointed) rather than wait past the budget."""
        budget = f"{self.policy.max_total_seconds:g} s"
        return SyncPaused(
            f"{self.platform}: {operation} is still rate limited after [retry] max_total_seconds ({budget}); "
            f"the CRM takes calls again in {human_duration(retry_after)}. "
            "Progress is saved: run the same command again then.",
            resume_after=retry_after,
        )

    def retrying(self, operation: str, fn: Callable[[], T]) -> T:
        """Repeat ``fn`` — a step made of several calls, e.g. "find, else create" — under the policy.

        Unlike :meth:`call` this neither throttles nor counts: the calls inside ``fn`` do. Used
        by the engine's ensure-steps together with :meth:`at_most_once`.
        """
        return self._retrying(operation, retriable)(fn)

    @contextmanager
    def at_most_once(self) -> Iterator[None]:
        """Calls made inside are not re-sent after an ambiguous failure (timeout, 5xx, drop).

        For creates that are not idempotent: a create whose response was lost may have
        succeeded, and sending it again would make a second list or property. 429s are still
        retried (the CRM refused them unprocessed).
        """
        previous = getattr(self._local, "at_most_once", False)
        self._local.at_most_once = True
        try:
            yield
        finally:
            self._local.at_most_once = previous

    def _retrying(
        self,
        operation: str,
        should_retry: Callable[[BaseException], bool],
        rate_waited: list[float] | None = None,
    ) -> tenacity.Retrying:
        """Attempts and ``max_total_seconds`` bound every wait between attempts: backoffs and the
        waits 429s ask for alike (a 429 storm ends). ``rate_waited`` collects the throttle's own
        pacing before each send, which ``max_rate_wait`` bounds instead (beyond it the job pauses)."""
        started = self.clock.now()
        policy = self.policy
        waited = rate_waited if rate_waited is not None else [0.0]

        def stop(state: tenacity.RetryCallState) -> bool:
            # tenacity computes the wait before asking stop: give up now rather than sleep past
            # the time budget only to fail afterwards.
            elapsed = self.clock.now() - started - waited[0] + (state.upcoming_sleep or 0.0)
            return state.attempt_number >= policy.max_attempts or elapsed > policy.max_total_seconds

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.upcoming_sleep
            with self._lock:
                self.stats.retries += 1
                self.stats.waited_seconds += wait
            log.info(
                "%s: %s failed (%s); retry %d in %.1fs",
                self.platform,
                operation,
                type(exc).__name__,
                state.attempt_number,
                wait,
            )

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(should_retry),
            stop=stop,
            wait=self._wait,
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


__all__ = [
    "CallRunner",
    "CallStats",
    "Clock",
    "RateWindow",
    "RetriableError",
    "RetryPolicy",
    "SimulatedClock",
    "SimulatedWallClock",
    "SystemClock",
]
