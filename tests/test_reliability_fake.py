"""Issue 4's reliability suite on the in-memory CRM (plugins run the same suite on their sandboxes)."""

from __future__ import annotations

import pytest

from segsync.testing import FakeInlinePlatform, FakeSettings, FakeWorld
from segsync.testing.reliability import ReliabilitySuite


@pytest.mark.reliability
class TestFakeReliability(ReliabilitySuite):
    def make_world(self):
        return FakeWorld()


@pytest.mark.reliability
class TestFakeInlineReliability(ReliabilitySuite):
    """Memberships read inline from contacts, odd batch sizes, small pages."""

    kill_points = 6

    def make_world(self):
        return FakeWorld(FakeInlinePlatform, FakeSettings(write_batch=13, membership_batch=11, page_size=9))
