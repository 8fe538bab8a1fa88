"""Registration, settings, manifest, limits and call costs of the HubSpot platform (no network)."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import SecretStr

from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.sync.platform import Platform
from segsync.sync.runner import CallRunner, RateWindow
from segsync_hubspot import platform as hs_platform
from segsync_hubspot.config import HubSpotSettings
from segsync_hubspot.platform import SCOPES, HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox


def test_the_entry_point_registers_the_platform() -> None:
    registry = build_registry(make_plugin_manager(environ={"SEGSYNC_LOAD_PLUGINS": "hubspot"}))
    cls = registry.platform("hubspot")
    assert cls is HubSpotPlatform
    assert cls.sandbox() is HubSpotSandbox
    assert cls.Settings is HubSpotSettings
    assert cls.secret_env == "SEGSYNC_HUBSPOT_TOKEN"


def test_create_makes_no_network_call_and_satisfies_the_protocol() -> None:
    settings = HubSpotSettings(base_url="http://127.0.0.1:9")
    platform = HubSpotPlatform.create(settings, secret=SecretStr("t"), runner=CallRunner("hubspot"))
    assert isinstance(platform, Platform)
    assert platform.runner.stats.calls == 0
    assert platform.limits.write_batch == 100
    assert platform.limits.membership_batch == 100
    platform.close()


@pytest.mark.parametrize(
    "settings",
    [
        {"list_type": "SNAPSHOT"},
        {"rate_limit_per_10s": 0},
        {"property_group": "SegSync"},
        {"home_currency": "usd"},
        {"membership_batch": 0},
        {"timeout": 0},
        {"token": "pat-123"},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        HubSpotSettings.model_validate(settings)


def test_rate_buckets_follow_the_settings() -> None:
    buckets = HubSpotPlatform.rate_buckets(
        HubSpotSettings(rate_limit_per_10s=100, rate_limit_per_day=250_000, search_per_second=3)
    )
    assert buckets == {
        "default": [RateWindow(requests=100, seconds=10.0), RateWindow(requests=250_000, seconds=86_400.0)],
        "search": [RateWindow(requests=3, seconds=1.0)],
    }


@pytest.mark.parametrize(
    ("kind", "records", "calls"),
    [
        ("pull_contacts", 0, 1),
        ("pull_contacts", 250, 3),
        ("pull_purchases", 0, 2),
        ("pull_purchases", 2500, 1 + 25 + 3),
        ("create_field", 0, 0),
        ("create_field", 14, 3),
        ("update_field", 2, 2),
        ("create_list", 10, 10),
        ("write_fields", 0, 0),
        ("write_fields", 101, 2),
        ("add_members", 250, 3),
        ("remove_members", 100, 1),
        ("read_members", 251, 2),
    ],
)
def test_call_cost_follows_the_batch_maxima(kind: str, records: int, calls: int) -> None:
    platform = HubSpotPlatform.create(HubSpotSettings(), secret=SecretStr("t"), runner=CallRunner("hubspot"))
    assert platform.call_cost(kind, records) == {"default": calls}  # type: ignore[arg-type]


def test_the_manifest_matches_the_code() -> None:
    manifest = HubSpotPlatform.manifest()
    assert manifest.platform.name == HubSpotPlatform.name
    assert {s.name for s in manifest.scopes} == set(SCOPES)
    limits = {m.name.split(" (")[0]: m.value for m in manifest.limits}
    defaults = HubSpotSettings()
    assert limits["requests per rolling 10 seconds"] == defaults.rate_limit_per_10s
    assert limits["requests per day"] == defaults.rate_limit_per_day
    assert limits["contacts or deals per GET page"] == hs_platform.PAGE_SIZE
    assert limits["inputs per contacts batch/update and properties batch/create"] == hs_platform.WRITE_BATCH
    assert limits["inputs per v4 association batch read"] == hs_platform.ASSOCIATION_BATCH
    assert limits["list memberships per GET page"] == hs_platform.MEMBERSHIP_PAGE
    assert limits["record ids per list add-and-remove"] == defaults.membership_batch
    assert {c.kind for c in manifest.creates} == {"property group", "property", "list"}
