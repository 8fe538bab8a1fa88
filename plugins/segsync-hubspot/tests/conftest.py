"""Fixtures for the HubSpot plugin tests: a sandbox on loopback, a platform on a fake clock.

Sandboxes write their exchanges to the test's own traffic log (``traffic_log``), so no test
depends on another: test_spec_conformance.py makes its own traffic and spec-checks it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from segsync.sandbox import SeedData, demo_dataset
from segsync.sandbox.seed import SeedContact, SeedPurchase
from segsync.sync.runner import CallRunner, RetryPolicy
from segsync.testing import FakeClock
from segsync_hubspot.config import HubSpotSettings
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

TOKEN = "pat-na1-test-token-7f3e"
AS_OF = dt.date(2026, 1, 15)
#: Fail fast: waits cost nothing on the fake clock, but a broken test should not loop long.
POLICY = RetryPolicy(max_attempts=4, max_total_seconds=600, backoff_initial=0.1, max_rate_wait=7200)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec_conformance: spec-checks the sandbox traffic it makes itself")


@pytest.fixture
def traffic_log(tmp_path: Path) -> Path:
    """The JSON Lines log this test's sandboxes append to."""
    return tmp_path / "traffic.jsonl"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def contact(cid: str, email: str | None = None, **kw: str) -> SeedContact:
    fields = {"firstname": "Ada", "lastname": "Lovelace", "country": "GB", "city": "London", "age": "36"}
    fields.update(kw)
    return SeedContact(
        id=cid,
        email=f"c{cid}@example.com" if email is None else email,
        firstname=fields["firstname"],
        lastname=fields["lastname"],
        country=fields["country"],
        city=fields["city"],
        age=fields["age"],
        jobtitle="",
        company_size="",
        createdate="2024-03-01T09:00:00Z",
    )


def deal(deal_id: str, contact_id: str, amount: str = "100.00", **kw: str) -> SeedPurchase:
    return SeedPurchase(
        deal_id=deal_id,
        contact_id=contact_id,
        amount=amount,
        currency=kw.get("currency", "USD"),
        closedate=kw.get("closedate", "2025-12-01T12:00:00Z"),
        stage=kw.get("stage", "won"),
    )


@pytest.fixture
def small_data() -> SeedData:
    """Twelve contacts, a few purchases, and the broken records real CRMs hold."""
    contacts = [contact(str(100 + i)) for i in range(12)]
    contacts[3] = contact("103", email="", firstname="NoMail")
    purchases = [
        deal("5001", "100", "120.50"),
        deal("5002", "100", "80"),
        deal("5003", "101", "99.99", closedate="2025-06-30"),
        deal("5004", "102", "", stage="won"),
        deal("5005", "102", "call me"),
        deal("5006", "", "199.00"),
        deal("5007", "104", "50.00", closedate=""),
        deal("5008", "105", "70.00", stage="lost"),
        deal("5009", "105", "30.00", stage="open"),
        deal("5010", "106", "120.00", currency="EUR"),
    ]
    return SeedData(contacts, purchases)


@pytest.fixture
def demo_data() -> SeedData:
    return demo_dataset(AS_OF, contacts=150)


@pytest.fixture
def make_sandbox(traffic_log: Path, clock: FakeClock) -> Iterator[Callable[..., HubSpotSandbox]]:
    """Start sandboxes that log to the test's traffic log; all are stopped after the test."""
    started: list[HubSpotSandbox] = []

    def make(data: SeedData | None = None, *, log: bool = True, **kw: Any) -> HubSpotSandbox:
        kw.setdefault("clock", clock)
        sb = HubSpotSandbox(secret=TOKEN, traffic_log=traffic_log if log else None, **kw)
        if data is not None:
            sb.seed(data)
        sb.start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def make_platform(clock: FakeClock) -> Iterator[Callable[..., HubSpotPlatform]]:
    """Platforms on the fake clock with HubSpot's own rate windows; closed after the test."""
    made: list[HubSpotPlatform] = []

    def make(
        sandbox: HubSpotSandbox | None = None,
        *,
        token: str = TOKEN,
        policy: RetryPolicy = POLICY,
        **settings: Any,
    ) -> HubSpotPlatform:
        if sandbox is not None:
            settings.setdefault("base_url", sandbox.base_url)
        settings.setdefault("timeout", 0.5)
        hs = HubSpotSettings.model_validate(settings)
        runner = CallRunner("hubspot", policy=policy, buckets=HubSpotPlatform.rate_buckets(hs), clock=clock)
        platform = HubSpotPlatform.create(hs, secret=SecretStr(token), runner=runner)
        made.append(platform)
        return platform

    yield make
    for p in made:
        p.close()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., HubSpotSandbox], small_data: SeedData) -> HubSpotSandbox:
    return make_sandbox(small_data)


@pytest.fixture
def platform(make_platform: Callable[..., HubSpotPlatform], sandbox: HubSpotSandbox) -> HubSpotPlatform:
    return make_platform(sandbox, home_currency="USD")
