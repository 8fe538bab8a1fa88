"""Clocks for tests: monotonic time that only moves when something sleeps, and a wall clock on it."""

from __future__ import annotations

import datetime as dt

from segsync.sync.runner import SimulatedClock, SimulatedWallClock


class FakeClock(SimulatedClock):
    """A :class:`segsync.sync.runner.Clock` whose ``sleep`` advances time instantly and is recorded.

    Share one instance between a :class:`~segsync.sync.runner.CallRunner` and a sandbox (its rate
    windows) or a :class:`~segsync.testing.FakeCRM`, and throttles, Retry-After waits and
    backoffs all happen in zero real time while staying exactly assertable::

        clock = FakeClock()
        runner = CallRunner("fake", clock=clock)
        ...
        assert clock.sleeps == [2.0, 2.0]

    It is :class:`segsync.sync.runner.SimulatedClock` (what ``segsync demo`` runs on) under the name
    tests know it by.
    """


class FakeWallClock(SimulatedWallClock):
    """A :class:`segsync.sync.state.WallClock` that follows a :class:`FakeClock` (default start:
    2026-01-15 09:00 UTC), so a sync that waits an hour also ends an hour later."""

    def __init__(self, clock: FakeClock | None = None, start: dt.datetime | None = None) -> None:
        super().__init__(clock or FakeClock(), start or dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC))
