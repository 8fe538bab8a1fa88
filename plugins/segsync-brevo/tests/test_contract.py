"""The core's platform contract and reliability suites, on the Brevo sandbox through brevo-python."""

from __future__ import annotations

from pathlib import Path

import pytest

from segsync.testing import PlatformContract, SandboxWorld
from segsync.testing.reliability import ReliabilitySuite
from segsync_brevo.platform import BrevoPlatform


class TestBrevoContract(PlatformContract):
    batch_contacts = 320

    @pytest.fixture
    def world(self, traffic_log: Path) -> SandboxWorld:
        # write_batch lowered so the contract's batch-maximum test runs on 320 contacts
        return SandboxWorld(
            BrevoPlatform, settings={"timeout": 5.0, "write_batch": 300}, traffic_log=traffic_log
        )


@pytest.mark.reliability
class TestBrevoReliability(ReliabilitySuite):
    def make_world(self) -> SandboxWorld:
        # A timeout fault holds the connection 0.2 s; the client gives up after 0.1 s. First
        # syncs (80 contacts) write through imports, later small ones one PUT per contact.
        return SandboxWorld(BrevoPlatform, settings={"timeout": 0.1, "put_max": 20}, hang_seconds=0.2)
