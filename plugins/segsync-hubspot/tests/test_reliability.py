"""segsync's reliability harness (issue 4) on the HubSpot sandbox, through the real SDK.

The first world's traffic (a whole sync driven by the engine) joins the session log, so the
engine's own call patterns are spec-checked too; the rest repeat them under faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from segsync.testing import SandboxWorld
from segsync.testing.reliability import ReliabilitySuite
from segsync_hubspot.platform import HubSpotPlatform


@pytest.mark.reliability
class TestHubSpotReliability(ReliabilitySuite):
    kill_points = 8  # the plugin suite stays under a minute; the core runs the full set on its fake
    traffic: ClassVar[Path | None] = None

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _log_first_world(cls, traffic_log: Path) -> Iterator[None]:
        """Runs before the class's harness (autouse fixtures come first in their scope)."""
        cls.traffic = traffic_log
        yield
        cls.traffic = None

    def make_world(self) -> SandboxWorld:
        log, type(self).traffic = self.traffic, None
        return SandboxWorld(HubSpotPlatform, settings={"timeout": 0.1}, hang_seconds=0.15, traffic_log=log)
