"""Test kit for segsync and its platform plugins (public API; plugins' tests import it).

* :class:`FakeClock`, :class:`FakeWallClock` — time that moves only when something sleeps.
* :class:`FakeCRM`, :class:`FakePlatform` — an in-memory CRM with fault injection and a
  faithful Platform over it (registry name ``"fake"``; ``pm.register(segsync.testing.fake)``).
* :class:`World`, :class:`FakeWorld`, :class:`SandboxWorld` — a fresh CRM account to test
  against, from the fake or from a plugin's loopback sandbox.
* :class:`PlatformContract` — the pytest class each plugin subclasses to check its platform.
* :mod:`segsync.testing.reliability` — the fault and crash-resume harness (issue 4).
* :func:`segsync.testing.spec.assert_traffic_conforms` — spec-check over sandbox traffic.
"""

from __future__ import annotations

from segsync.testing.clock import FakeClock, FakeWallClock
from segsync.testing.contract import PlatformContract
from segsync.testing.fake import FakeCRM, FakeInlinePlatform, FakePlatform, FakeSettings
from segsync.testing.world import FakeWorld, SandboxWorld, World, make_runner

__all__ = [
    "FakeCRM",
    "FakeClock",
    "FakeInlinePlatform",
    "FakePlatform",
    "FakeSettings",
    "FakeWallClock",
    "FakeWorld",
    "PlatformContract",
    "SandboxWorld",
    "World",
    "make_runner",
]
