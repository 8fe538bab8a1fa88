"""Issue 7: bad deal and contact data in HubSpot costs the record it is in, never the sync.

Mapping cases on JSON fixtures first, then whole syncs through hubspot-api-client against the
sandbox, seeded with the raw strings HubSpot would hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from segsync import FieldSpec, Purchase, Rejection
from segsync.sandbox import SeedData
from segsync.testing import FakeClock, StateFile
from segsync_hubspot import mapping
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

from .conftest import AS_OF, contact, deal

UTC = dt.UTC
RANGE = "is out of range (at most 1,000,000,000,000,000 either way)"
EARLY = "a typo or a placeholder date; correct the close date in the CRM"
LATER = "it counts in runs on or after that day"
UNREADABLE = "is unreadable (expected an ISO 8601 date-time or epoch milliseconds)"


def _deal(**props: str) -> dict[str, object]:
    base = {"amount": "10", "closedate": "2025-12-01T12:00:00.000Z"}
    return {"id": "77", "properties": {**base, **props}}


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({"amount": "1e27"}, f"won deal amount '1e27' {RANGE}"),
        ({"amount": "1e400"}, f"won deal amount '1e400' {RANGE}"),
        ({"amount": "-1e30"}, f"won deal amount '-1e30' {RANGE}"),
        (
            {"amount": "1e27", "amount_in_home_currency": "1e27"},
            f"won deal amount_in_home_currency '1e27' {RANGE}",
        ),
        ({"amount": "Infinity"}, "won deal amount 'Infinity' is not a number"),
        ({"amount": "1,234.50"}, "won deal amount '1,234.50' is not a number"),
        ({"amount": "12\x00"}, "won deal amount '12\\x00' is not a number"),
        ({"amount": "\ud83d"}, "won deal amount '\\ud83d' is not a number"),
        ({"amount": "  "}, "won deal has no amount"),
        ({"closedate": "31/12/2025"}, f"won deal close date (closedate) '31/12/2025' {UNREADABLE}"),
        ({"closedate": "2025-13-01"}, f"won deal close date (closedate) '2025-13-01' {UNREADABLE}"),
        (
            {"closedate": "99999999999999999999"},
            "won deal close date (closedate) '99999999999999999999' is out of range "
            "(epoch milliseconds beyond the years 1 to 9999)",
        ),
        (
            {"closedate": "-99999999999999999"},
            "won deal close date (closedate) '-99999999999999999' is out of range "
            "(epoch milliseconds beyond the years 1 to 9999)",
        ),
        ({"closedate": "9" * 5000}, "won deal close date (closedate) '" + "9" * 60 + "…' is out of range"),
        ({"closedate": "   "}, "won deal has no close date (closedate)"),
    ],
)
def test_bad_deals_are_rejected_quoting_the_value(props: dict[str, str], reason: str) -> None:
    got = mapping.deal_purchases(_deal(**props), ["1"], "USD")
    assert isinstance(got, Rejection)
    assert got.record_id == "77"
    assert got.reason.startswith(reason)
    assert got.reason.encode(), "storable as UTF-8"


@pytest.mark.parametrize(
    ("props", "amount", "closed"),
    [
        ({"amount": " 12 "}, Decimal(12), None),
        ({"amount": "1.5E3"}, Decimal(1500), None),
        ({"amount": "-0"}, Decimal(0), None),
        ({"amount": "1e-400"}, Decimal(0), None),
        ({"amount": "1000000000000000"}, Decimal(10) ** 15, None),
        ({"closedate": "-864000000"}, None, dt.datetime(1969, 12, 22, tzinfo=UTC)),
        ({"closedate": "253402300799000"}, None, dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (
            {"closedate": "0001-01-01T00:00:00Z"},
            None,
            dt.datetime(1, 1, 1, tzinfo=UTC),
        ),  # the core rejects it
    ],
)
def test_odd_but_readable_deals_are_values(
    props: dict[str, str], amount: Decimal | None, closed: dt.datetime | None
) -> None:
    got = mapping.deal_purchases(_deal(**props), ["1"], "USD")
    assert isinstance(got, list)
    (p,) = got
    if amount is not None:
        assert p.amount == amount
        assert not p.amount.is_signed()
    if closed is not None:
        assert p.closed_at == closed


def test_a_deal_with_an_id_that_cannot_be_stored_is_rejected() -> None:
    got = mapping.deal_purchases({"id": "77\ud800", "properties": _deal()["properties"]}, ["1"], "USD")
    assert isinstance(got, Rejection)
    assert got.record_id == "77\\ud800"


@pytest.mark.parametrize(
    ("spec_type", "raw"),
    [
        ("number", "1e999999999"),
        ("number", "9" * 40),
        ("date", "0001-01-01T00:00:00+05:00"),
        ("date", "9999-12-31T23:00:00-05:00"),
        ("date", "99999999999999999999"),
    ],
)
def test_managed_values_nobody_could_have_written_stay_text(spec_type: str, raw: str) -> None:
    spec = FieldSpec(key="segsync_x", label="x", type=spec_type)  # type: ignore[arg-type]
    assert mapping.parse_value(spec, raw) == raw


@pytest.mark.parametrize("size", ["n/a", "1e30", -1, None, 10**30])
def test_a_list_size_that_is_no_count_is_unknown(size: object) -> None:
    assert mapping.remote_list({"listId": "1", "name": "x", "size": size}).size is None


# -- through the SDK ---------------------------------------------------------------------------


def _sync(platform: HubSpotPlatform, clock: FakeClock, path: Path, *, dry_run: bool = False) -> Any:
    return StateFile(path, clock=clock).sync(platform, as_of=AS_OF, account="bad-data", dry_run=dry_run)


BAD_DEALS = {
    # deal id: (amount, closedate, expected reason)
    "7001": ("1e27", "2025-12-01T12:00:00Z", f"won deal amount '1e27' {RANGE}"),
    "7002": ("1e30", "2025-12-01T12:00:00Z", f"won deal amount '1e30' {RANGE}"),
    "7003": ("1e400", "2025-12-01T12:00:00Z", f"won deal amount '1e400' {RANGE}"),
    "7004": ("NaN", "2025-12-01T12:00:00Z", "won deal amount 'NaN' is not a number"),
    "7005": ("1,234.50", "2025-12-01T12:00:00Z", "won deal amount '1,234.50' is not a number"),
    "7006": ("10", "31/12/2025", f"won deal close date (closedate) '31/12/2025' {UNREADABLE}"),
    "7007": (
        "10",
        "99999999999999999999",
        "won deal close date (closedate) '99999999999999999999' is out of range "
        "(epoch milliseconds beyond the years 1 to 9999)",
    ),
    # not year 1 here: the sandbox serves it as "1-01-01T..." (strftime's %Y); the mapping tests have it
    "7008": (
        "10",
        "1850-06-01T00:00:00Z",
        f"closed on 1850-06-01, before 1900-01-01: {EARLY}",
    ),
    "7009": (
        "10",
        "9999-12-31T23:59:59Z",
        f"closed on 9999-12-31, after the reference date 2026-01-15 (as_of); {LATER}",
    ),
}


@pytest.fixture
def bad_data() -> SeedData:
    """One contact per bad deal (each also has nothing else), and contacts whose deals are fine."""
    contacts = [contact(str(200 + i)) for i in range(len(BAD_DEALS))]
    purchases = [
        deal(deal_id, str(200 + i), amount, closedate=closed)
        for i, (deal_id, (amount, closed, _)) in enumerate(BAD_DEALS.items())
    ]
    contacts += [contact("300"), contact("301"), contact("302"), contact("303", email="")]
    purchases += [
        deal("8001", "300", "100.00"),
        deal("8002", "301", " 12 "),
        deal("8003", "301", "1.5E3"),
        deal("8004", "301", "-0"),
        deal("8005", "301", "10", closedate="-864000000"),  # 1969-12-22, as epoch milliseconds
        *(deal(f"810{i}", "302", "999999999999999.99") for i in range(3)),  # big but valid
        deal("8200", "303", "50.00"),  # its contact has no email
    ]
    return SeedData(contacts, purchases)


def test_bad_deals_cost_only_themselves_and_big_valid_ones_are_written_back(
    make_sandbox: Callable[..., HubSpotSandbox],
    make_platform: Callable[..., HubSpotPlatform],
    clock: FakeClock,
    bad_data: SeedData,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(bad_data)
    platform = make_platform(sandbox, home_currency="USD")
    result = _sync(platform, clock, tmp_path / "state.db")
    assert result.report.status == "succeeded", result.report.error
    got = {r.record_id: r.reason for r in result.rejections if r.kind == "purchase"}
    assert got == {
        **{deal_id: reason for deal_id, (_, _, reason) in BAD_DEALS.items()},
        "8200": "contact 303 was rejected (missing email); its purchase is not counted",
    }
    fields = sandbox.snapshot()["fields"]
    assert isinstance(fields, dict)
    assert fields["300"]["segsync_revenue"] == "100"
    assert (fields["301"]["segsync_revenue"], fields["301"]["segsync_order_count"]) == ("1522", "4")
    assert fields["301"]["segsync_first_purchase"] == "1969-12-22"
    # 2999999999999999.97 has more digits than the CRM's doubles keep: written as they would read back
    assert fields["302"]["segsync_revenue"] == "3000000000000000"
    assert fields["302"]["segsync_average_order"] == "1000000000000000"
    for i in range(len(BAD_DEALS)):
        assert "segsync_revenue" not in fields[str(200 + i)], "no bad deal counts for anyone"
        assert fields[str(200 + i)]["segsync_rfm_segment"] == "no_purchase"

    again = _sync(platform, clock, tmp_path / "state.db", dry_run=True)
    assert again.plan is not None
    assert not again.plan.writes_anything, "what was written reads back as the same values"


def test_text_a_real_sdk_cannot_encode_stays_out_of_the_sync(
    make_sandbox: Callable[..., HubSpotSandbox],
    make_platform: Callable[..., HubSpotPlatform],
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    data = SeedData(
        [
            contact("400", email="nul\x00@example.com"),
            contact("401", email="half\ud800@example.com"),
            contact("402", firstname="A\x00\ud800\u202eB", city="\U0001f600"),
        ],
        [deal("9000", "400", "10"), deal("9001", "401", "20"), deal("9002", "402", "30")],
    )
    # unlogged: the session traffic log goes to spec-check, which reads strict UTF-8
    platform = make_platform(make_sandbox(data, log=False), home_currency="USD")
    pulled = {c.id: c for c in platform.iter_contacts(["firstname"], (), {}) if not isinstance(c, Rejection)}
    assert pulled["402"].properties["firstname"] == "A\x00\ud800\u202eB"
    assert [p.id for p in platform.iter_purchases(None) if isinstance(p, Purchase)] == [
        "9000",
        "9001",
        "9002",
    ]

    result = _sync(platform, clock, tmp_path / "state.db")
    assert result.report.status == "succeeded", result.report.error
    assert {(r.kind, r.record_id): r.reason for r in result.rejections} == {
        ("contact", "400"): "email holds a control character or an unpaired surrogate",
        ("contact", "401"): "email holds a control character or an unpaired surrogate",
        ("purchase", "9000"): "contact 400 was rejected (email holds a control character or an unpaired "
        "surrogate); its purchase is not counted",
        ("purchase", "9001"): "contact 401 was rejected (email holds a control character or an unpaired "
        "surrogate); its purchase is not counted",
    }
    assert result.desired is not None
    assert set(result.desired.values) == {"402"}
    assert result.desired.values["402"]["segsync_revenue"] == Decimal(30)
