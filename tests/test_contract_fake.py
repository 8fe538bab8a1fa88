"""The platform contract run on the fake CRM, so the fake stays faithful to what plugins must do."""

from __future__ import annotations

import pytest

from segsync.testing import FakeInlinePlatform, FakeSettings, FakeWorld, PlatformContract


class TestFakeContract(PlatformContract):
    batch_contacts = 20

    @pytest.fixture
    def world(self):
        return FakeWorld()


class TestFakeInlineContract(PlatformContract):
    batch_contacts = 20

    @pytest.fixture
    def world(self):
        return FakeWorld(FakeInlinePlatform, FakeSettings(write_batch=13, membership_batch=11, page_size=9))
