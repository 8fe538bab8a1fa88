"""Test kit for segsync and its platform plugins (public API; plugins' tests import it).

* :class:`FakeClock`, :class:`FakeWallClock` — time that moves only when something sleeps.
* :class:`FakeCRM`, :class:`FakePlatform` — an in-memory CRM with fault injection and a
  faithful Platform over it (registry name ``"fake"``; ``pm.register(segsync.testing.fake)``).
* :class:`World`, :class:`FakeWorld`, :class:`SandboxWorld` — a fresh CRM account to test
  against, from the fake or from a plugin's loopback sandbox.
* :class:`PlatformContract` — the pytest class each plugin subclasses to check its platform.
* :mod:`segsync.testing.reliability` — the fault and crash-resume harness (issue 4).
* :func:`segsync.testing.spec.assert_traffic_conforms` — spec-check over sandbox traffic.
* :class:`Project` (the ``segsync_project`` fixture) — a project driven through the CLI against a
  plugin's sandbox; :class:`StateFile` — sync jobs run by a test on a fake clock.
"""

from __future__ import annotations

import pytest

# Plugins' test runs get pytest's detailed assertion messages from the suites' own asserts.
pytest.register_assert_rewrite("segsync.testing.contract", "segsync.testing.reliability")

# E402: these imports must follow register_assert_rewrite to be rewritten.
from segsync.testing.clock import FakeClock, FakeWallClock  # noqa: E402
from segsync.testing.contract import PlatformContract  # noqa: E402
from segsync.testing.fake import FakeCRM, FakeInlinePlatform, FakePlatform, FakeSettings  # noqa: E402
from segsync.testing.project import Outcome, Project, StateFile  # noqa: E402
from segsync.testing.world import FakeWorld, SandboxWorld, World, make_runner  # noqa: E402

__all__ = [
    "FakeCRM",
    "FakeClock",
    "FakeInlinePlatform",
    "FakePlatform",
    "FakeSettings",
    "FakeWallClock",
    "FakeWorld",
    "Outcome",
    "PlatformContract",
    "Project",
    "SandboxWorld",
    "StateFile",
    "World",
    "make_runner",
]
