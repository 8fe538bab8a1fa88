"""segsync's platform contract, run against the HubSpot sandbox through the real SDK."""

from __future__ import annotations

import pytest

from segsync.testing import PlatformContract, SandboxWorld
from segsync_hubspot.platform import HubSpotPlatform

pytestmark = pytest.mark.e2e


class TestHubSpotContract(PlatformContract):
    @pytest.fixture
    def world(self) -> SandboxWorld:
        return SandboxWorld(HubSpotPlatform, settings={"timeout": 0.2})
