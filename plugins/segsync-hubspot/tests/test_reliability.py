"""segsync's reliability harness (issue 4) on the HubSpot sandbox, through the real SDK.

The engine's own call patterns are spec-checked in test_spec_conformance.py, which runs the
harness's clean reference sync against a sandbox logging its traffic.
"""

from __future__ import annotations

import pytest

from segsync.testing import SandboxWorld
from segsync.testing.reliability import ReliabilitySuite
from segsync_hubspot.platform import HubSpotPlatform


@pytest.mark.reliability
class TestHubSpotReliability(ReliabilitySuite):
    kill_points = 8  # the plugin suite stays under a minute; the core runs the full set on its fake

    def make_world(self) -> SandboxWorld:
        return SandboxWorld(HubSpotPlatform, settings={"timeout": 0.1}, hang_seconds=0.15)
