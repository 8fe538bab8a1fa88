"""The sync loop behind ``segsync watch`` and ``segsync serve``: incremental syncs, one at a time.

A platform's sync runs when it is due on the timer (``every``) or when webhook events wait for
it (``wake``), after a short quiet spell (``debounce``) so a burst of events costs one sync. The
loop outlives whatever one sync meets:

* a spent rate budget (:class:`~segsync.errors.SyncPaused`): it waits for the budget, then goes on;
* a CRM or store error: one log line, then a retry after a backoff that doubles up to ``every``;
* another process syncing the account (:class:`~segsync.errors.JobLocked`): a retry shortly;
* a stop request (SIGTERM): the running sync stops at its next checkpoint, the loop returns.

Events are settled only by a sync that succeeded and started after they were queued, so none is
lost to a failure, a pause or a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from segsync.core.report import SyncReport
from segsync.errors import JobLocked, SegsyncError, SyncPaused, SyncStopped
from segsync.project.app import Project, as_of_date
from segsync.project.output import human_duration
from segsync.project.run import open_store, sync_project

log = logging.getLogger("segsync.loop")

#: The first retry after a failed sync; it doubles on each failure in a row, up to ``every``.
FIRST_BACKOFF = 30.0
#: How soon to try again when another process holds the account's lock.
LOCKED_RETRY = 15.0


@dataclass(frozen=True)
class RunOutcome:
    """One sync the loop ran: how it ended, its report when it has one, and the events it settled."""

    platform: str
    status: str  # succeeded, paused, failed, locked, stopped
    seconds: float
    report: SyncReport | None = None
    error: str | None = None
    wait: float | None = None
    lags: tuple[float, ...] = ()
    trigger: str = "timer"

    def line(self) -> str:
        """The one log line of the run."""
        took = f"in {self.seconds:.1f} s"
        settled = f"; {len(self.lags)} event(s) settled" if self.lags else ""
        r = self.report
        if self.status == "succeeded" and r is not None:
            return (
                f"{self.platform}: job {r.job.job_id} succeeded {took} ({self.trigger}): pulled "
                f"{r.contacts_text()} and {r.purchases_pulled} purchases; wrote {r.contacts_written} "
                f"contact(s); list members +{r.members_added} -{r.members_removed}; {r.calls} API "
                f"call(s){settled}"
            )
        if self.status == "paused":
            return (
                f"{self.platform}: paused {took}: {self.error}; going on in {human_duration(self.wait or 0)}"
            )
        if self.status == "locked":
            return f"{self.platform}: skipped: {self.error}; trying again in {self.wait:.0f} s"
        if self.status == "stopped":
            return f"{self.platform}: stopped {took} at a checkpoint; the next sync resumes it"
        return (
            f"{self.platform}: failed {took}: {self.error}; trying again in {human_duration(self.wait or 0)}"
        )


class SyncLoop:
    """Runs the project's syncs for ``platforms`` until ``stop`` is set.

    ``sync`` runs one sync and returns its report (tests pass their own); by default it is
    :func:`segsync.project.run.sync_project` for the project. ``on_outcome`` hears every run.
    """

    def __init__(
        self,
        project: Project,
        platforms: Sequence[str],
        *,
        every: float | None,
        debounce: float = 2.0,
        stop: threading.Event | None = None,
        on_outcome: Callable[[RunOutcome], None] | None = None,
        sync: Callable[[str, Callable[[], bool]], SyncReport] | None = None,
    ) -> None:
        self.project = project
        self.platforms = list(platforms)
        self.every = every
        self.debounce = debounce
        self.stop = stop or threading.Event()
        self.on_outcome = on_outcome
        self._sync = sync or self._sync_project
        self._cond = threading.Condition()
        now = time.monotonic()
        # the first timed run goes at once; without a timer, only events start syncs
        self._due = dict.fromkeys(self.platforms, now if every is not None else float("inf"))
        self._woken: dict[str, float] = {}
        self._failures = dict.fromkeys(self.platforms, 0)
        #: Until when a platform waits out a failure's backoff or a pause (events too).
        self._blocked: dict[str, float] = {}
        self.store = open_store(project.config, project.env)
        for name in self.platforms:  # events acknowledged before a restart still wait
            if self.store.pending_events(name).count:
                self._woken[name] = now - debounce

    # -- what serve calls -------------------------------------------------------------------

    def wake(self, platform: str) -> None:
        """Events for ``platform`` were queued: sync it after the debounce."""
        with self._cond:
            self._woken.setdefault(platform, time.monotonic())
            self._cond.notify_all()

    def poke(self) -> None:
        """Wake the loop to look again (a stop was asked for)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        self.store.close()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Sync until ``stop`` is set (a running sync stops at its next checkpoint)."""
        while not self.stop.is_set():
            name, trigger = self._next()
            if name is None:
                continue
            try:
                outcome = self.run_once(name, trigger)
            except SegsyncError as err:  # the state store itself failed (busy, damaged, read-only)
                outcome = RunOutcome(
                    name, "failed", 0.0, error=str(err), wait=self._backoff(name), trigger=trigger
                )
                self._schedule(name, outcome)
            log.debug("%s", outcome.line())
            if self.on_outcome is not None:
                self.on_outcome(outcome)

    def _next(self) -> tuple[str | None, str]:
        """The next platform due and why, after waiting for it (None: woken or stopping)."""
        with self._cond:
            now = time.monotonic()
            for name in self.platforms:
                if now >= self._events_due(name):
                    return name, "events"
                if now >= self._due[name]:
                    return name, "timer"
            soonest = min(min(self._due[n], self._events_due(n)) for n in self.platforms)
            self._cond.wait(timeout=max(0.0, min(soonest - now, 60.0)) if soonest != float("inf") else 60.0)
            return None, ""

    def _events_due(self, name: str) -> float:
        """When waiting events start a sync: the debounce after the first, and not before a
        failure's backoff or a pause is over (never, with none waiting)."""
        woken = self._woken.get(name)
        if woken is None:
            return float("inf")
        return max(woken + self.debounce, self._blocked.get(name, 0.0))

    def run_once(self, name: str, trigger: str = "timer") -> RunOutcome:
        """One sync of ``name``; settles the events queued before it started if it succeeds."""
        with self._cond:
            self._woken.pop(name, None)
        pending = self.store.pending_events(name)
        start = time.monotonic()

        def ended(
            status: str,
            *,
            report: SyncReport | None = None,
            error: str | None = None,
            wait: float | None = None,
            lags: tuple[float, ...] = (),
        ) -> RunOutcome:
            took = time.monotonic() - start
            return RunOutcome(name, status, took, report, error, wait, lags, trigger)

        try:
            report = self._sync(name, self.stop.is_set)
        except SyncPaused as paused:
            outcome = ended("paused", error=str(paused), wait=paused.resume_after)
        except SyncStopped:
            outcome = ended("stopped")
        except JobLocked as locked:
            outcome = ended("locked", error=str(locked), wait=LOCKED_RETRY)
        except SegsyncError as err:
            outcome = ended("failed", error=str(err), wait=self._backoff(name))
        except Exception as exc:  # never the text: it may carry SDK bodies (PII)
            error = f"internal error ({type(exc).__name__}); run `segsync sync -vv` for where"
            outcome = ended("failed", error=error, wait=self._backoff(name))
        else:
            self._failures[name] = 0
            lags = self.store.settle_events(name, pending.last_seq, self.store.wall_clock.now())
            outcome = ended("succeeded", report=report, lags=tuple(lags))
        self._schedule(name, outcome)
        return outcome

    def _schedule(self, name: str, outcome: RunOutcome) -> None:
        now = time.monotonic()
        with self._cond:
            if outcome.status == "succeeded":
                self._blocked.pop(name, None)
                self._due[name] = now + self.every if self.every is not None else float("inf")
                return
            wait = outcome.wait or 0.0
            self._blocked[name] = now + wait
            self._due[name] = now + wait
            # a failed run leaves its events waiting: they wake the loop once the wait is over
            self._woken.setdefault(name, now)

    def _backoff(self, name: str) -> float:
        self._failures[name] += 1
        cap = self.every if self.every is not None else 15 * 60.0
        return float(min(cap, FIRST_BACKOFF * 2 ** (self._failures[name] - 1)))

    def _sync_project(self, name: str, should_stop: Callable[[], bool]) -> SyncReport:
        project = self.project
        result = sync_project(
            project.config,
            name,
            registry=project.registry,
            as_of=as_of_date(project.config, None, today=dt.date.today()),
            hooks=project.hooks,
            env=project.env,
            packs=project.packs,
            should_stop=should_stop,
        )
        return result.report


@contextmanager
def stop_on_signals(stop: threading.Event, wake: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (and wake the loop) instead of killing the process."""

    def handler(signum: int, frame: FrameType | None) -> None:
        print(f"segsync: {signal.Signals(signum).name}: stopping after the current batch", file=sys.stderr)
        stop.set()
        wake()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


__all__ = ["FIRST_BACKOFF", "LOCKED_RETRY", "RunOutcome", "SyncLoop", "stop_on_signals"]
