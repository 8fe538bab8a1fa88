"""Clocks for tests: monotonic time that only moves when something sleeps, and a wall clock on it."""

from __future__ import annotations

import datetime as dt
import threading


class FakeClock:
    """A :class:`segsync.retry.Clock` whose ``sleep`` advances time instantly and is recorded.

    Share one instance between a :class:`~segsync.retry.CallRunner` and a sandbox (its rate
    windows) or a :class:`~segsync.testing.FakeCRM`, and throttles, Retry-After waits and
    backoffs all happen in zero real time while staying exactly assertable::

        clock = FakeClock()
        runner = CallRunner("fake", clock=clock)
        ...
        assert clock.sleeps == [2.0, 2.0]
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


class FakeWallClock:
    """A :class:`segsync.state.WallClock` that follows a :class:`FakeClock`.

    Wall time is ``start`` plus however far the monotonic clock moved, so a sync that waits
    an hour for a rate budget also ends an hour later on the wall clock.
    """

    def __init__(self, clock: FakeClock | None = None, start: dt.datetime | None = None) -> None:
        self.clock = clock or FakeClock()
        self._origin = self.clock.now()
        self._start = start or dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self.clock.now() - self._origin)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
