"""Fixtures: a Brevo sandbox on loopback (fake clock) and the platform connected to it.

Sandboxes write their exchanges to the test's own traffic log (``traffic_log``), so no test
depends on another: test_spec_conformance.py makes its own traffic and spec-checks it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from segsync import CallRunner, RetryPolicy
from segsync.sandbox import SeedData, demo_dataset
from segsync.testing import FakeClock
from segsync_brevo.config import BrevoSettings
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

KEY = "xkeysib-0123456789abcdef-sandbox"
AS_OF = dt.date(2026, 1, 15)
POLICY = RetryPolicy(max_attempts=5, max_total_seconds=600, backoff_initial=0.1, max_rate_wait=7200)


@pytest.fixture
def traffic_log(tmp_path: Path) -> Path:
    """The JSON Lines log this test's ``sandbox`` appends to."""
    return tmp_path / "brevo-traffic.jsonl"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def seed_data() -> SeedData:
    return demo_dataset(AS_OF, contacts=60)


def start_sandbox(clock: FakeClock, data: SeedData, log: Path | None, **kw: Any) -> BrevoSandbox:
    sandbox = BrevoSandbox(secret=KEY, traffic_log=log, clock=clock, **kw)
    sandbox.seed(data)
    sandbox.start()
    return sandbox


@pytest.fixture
def sandbox(clock: FakeClock, seed_data: SeedData, traffic_log: Path) -> Iterator[BrevoSandbox]:
    """A sandbox logging its traffic: for requests the real API would accept."""
    sandbox = start_sandbox(clock, seed_data, traffic_log)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def quiet_sandbox(clock: FakeClock, seed_data: SeedData) -> Iterator[BrevoSandbox]:
    """A sandbox without traffic log, for requests Brevo refuses on purpose."""
    sandbox = start_sandbox(clock, seed_data, None)
    yield sandbox
    sandbox.stop()


def connect(
    sandbox: BrevoSandbox,
    clock: FakeClock,
    *,
    policy: RetryPolicy = POLICY,
    key: str = KEY,
    **settings: Any,
) -> BrevoPlatform:
    brevo = BrevoSettings(base_url=sandbox.base_url, **settings)
    runner = CallRunner(
        "brevo", policy=policy, buckets=BrevoPlatform.rate_buckets(brevo), clock=clock, rng=random.Random(0)
    )
    return BrevoPlatform.create(brevo, secret=SecretStr(key), runner=runner)


@pytest.fixture
def platform(sandbox: BrevoSandbox, clock: FakeClock) -> Iterator[BrevoPlatform]:
    platform = connect(sandbox, clock)
    yield platform
    platform.close()
