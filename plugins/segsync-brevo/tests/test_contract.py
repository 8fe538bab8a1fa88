"""The core's platform contract, on the Brevo sandbox through brevo-python."""

from __future__ import annotations

import pytest

from segsync.testing import PlatformContract, SandboxWorld
from segsync_brevo.platform import BrevoPlatform


class TestBrevoContract(PlatformContract):
    batch_contacts = 320

    @pytest.fixture
    def world(self) -> SandboxWorld:
        # write_batch lowered so the contract's batch-maximum test runs on 320 contacts
        return SandboxWorld(BrevoPlatform, settings={"timeout": 5.0, "write_batch": 300})
