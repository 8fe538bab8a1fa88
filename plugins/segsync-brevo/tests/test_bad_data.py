"""Issue 7: bad deal, order and contact data in Brevo costs the record it is in, never the sync.

Mapping cases on JSON fixtures first, then whole syncs through brevo-python against the
sandbox, seeded with the raw values Brevo would hold.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from segsync import Purchase, Rejection
from segsync.sandbox import SeedData
from segsync.sandbox.seed import SeedContact, SeedPurchase
from segsync.testing import FakeClock, StateFile
from segsync_brevo import mapping
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import AS_OF, connect, start_sandbox

UTC = dt.UTC
RANGE = "is out of range (at most 1,000,000,000,000,000 either way)"
UNREADABLE = "is unreadable (expected an ISO 8601 date-time such as 2025-12-01T12:00:00Z)"
LATER = "it counts in runs on or after that day"
EARLY = "a typo or a placeholder date; correct the close date in the CRM"


def _deal(**attrs: object) -> dict[str, object]:
    base = {"deal_stage": "s-won", "amount": 120.5, "close_date": "2026-01-10T12:00:00.000Z"}
    return {"id": "d1", "attributes": {**base, **attrs}, "linkedContactsIds": [5]}


def _records(deal: dict[str, object]) -> list[object]:
    return list(
        mapping.deal_records(
            deal,
            won_stages={"s-won": "Sales / Won"},
            amount_attribute="amount",
            close_attribute="close_date",
            currency="USD",
            incremental=False,
        )
    )


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"amount": 1e27}, f"won deal amount '1e+27' {RANGE}"),
        ({"amount": "1e400"}, f"won deal amount '1e400' {RANGE}"),
        ({"amount": -(10**30)}, f"won deal amount '-{10**30}' {RANGE}"),
        ({"amount": float("inf")}, "won deal amount 'inf' is not a number"),
        ({"amount": "NaN"}, "won deal amount 'NaN' is not a number"),
        ({"amount": "1,234.50"}, "won deal amount '1,234.50' is not a number"),
        ({"amount": True}, "won deal amount 'True' is not a number"),
        ({"amount": "  "}, "won deal has no amount"),
        ({"close_date": None}, "won deal has no close date (close_date)"),
        ({"close_date": ""}, "won deal has no close date (close_date)"),
        ({"close_date": "31/12/2025"}, f"won deal close date (close_date) '31/12/2025' {UNREADABLE}"),
        ({"close_date": 1767225600000}, f"won deal close date (close_date) '1767225600000' {UNREADABLE}"),
        (
            {"close_date": "2025-12-01\x00"},
            f"won deal close date (close_date) '2025-12-01\\x00' {UNREADABLE}",
        ),
        (
            {"close_date": "0001-01-01T00:00:00+05:00"},  # UTC would be year 0
            f"won deal close date (close_date) '0001-01-01T00:00:00+05:00' {UNREADABLE}",
        ),
    ],
)
def test_bad_deals_are_rejected_quoting_the_value(attrs: dict[str, object], reason: str) -> None:
    (got,) = _records(_deal(**attrs))
    assert got == Rejection(kind="purchase", record_id="d1", reason=reason)


@pytest.mark.parametrize(
    ("attrs", "amount", "closed"),
    [
        ({"amount": " 12 "}, Decimal(12), None),
        ({"amount": "1.5E3"}, Decimal(1500), None),
        ({"amount": -0.0}, Decimal(0), None),
        ({"amount": 1e-300}, Decimal(0), None),
        ({"amount": 999999999999999.9}, Decimal("999999999999999.9"), None),
        ({"close_date": "1969-12-31"}, None, dt.datetime(1969, 12, 31, tzinfo=UTC)),
        ({"close_date": "9999-12-31T23:59:59Z"}, None, dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (
            {"close_date": "0001-01-01T00:00:00Z"},
            None,
            dt.datetime(1, 1, 1, tzinfo=UTC),
        ),  # the core rejects it
    ],
)
def test_odd_but_readable_deals_are_values(
    attrs: dict[str, object], amount: Decimal | None, closed: dt.datetime | None
) -> None:
    (p,) = _records(_deal(**attrs))
    assert isinstance(p, Purchase)
    if amount is not None:
        assert p.amount == amount
        assert not p.amount.is_signed()
    if closed is not None:
        assert p.closed_at == closed


def test_orders_say_what_is_wrong_with_their_date() -> None:
    def order(created: object) -> Rejection:
        (got,) = mapping.order_records(
            {"id": "o1", "status": "completed", "amount": 5, "createdAt": created},
            contact_id="9",
            statuses=("completed",),
            currency=None,
            incremental=False,
        )
        assert isinstance(got, Rejection)
        return got

    assert order(None).reason == "order has no date (createdAt)"
    assert order("yesterday").reason == f"order date (createdAt) 'yesterday' {UNREADABLE}"


def test_ids_that_cannot_be_stored_are_rejected() -> None:
    (got,) = _records({**_deal(), "id": "d\ud800"})
    assert isinstance(got, Rejection)
    assert got.record_id == "d\\ud800"


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("category", "²"),
        ("category", "9" * 5000),
        ("category", True),
        ("date", "0001-13-01"),
        ("float", "1e400"),
    ],
)
def test_managed_values_that_make_no_sense_decode_to_nothing(kind: str, raw: object) -> None:
    got = mapping.decode_value(kind, raw, {1: "champions"})
    assert got is None or isinstance(got, Decimal)


def test_a_contact_email_that_is_no_text_is_no_email() -> None:
    contact = mapping.contact_from_brevo(
        {"id": 7, "email": 12, "attributes": {"FIRSTNAME": "A\x00\ud800"}},
        properties=["firstname"],
        managed=[],
        list_keys={},
        overrides={},
    )
    assert contact.email is None
    assert contact.properties["firstname"] == "A\x00\ud800"


# -- through the SDK ---------------------------------------------------------------------------


def _sync(platform: BrevoPlatform, clock: FakeClock, path: Path, *, dry_run: bool = False) -> Any:
    return StateFile(path, clock=clock).sync(platform, as_of=AS_OF, account="bad-data", dry_run=dry_run)


def _contact(cid: str, email: str | None = None) -> SeedContact:
    return SeedContact(
        cid, f"c{cid}@example.com" if email is None else email, "Ada", "", "GB", "", "", "", "", ""
    )


def _buy(deal_id: str, cid: str, amount: str, closed: str = "2025-12-01T12:00:00Z") -> SeedPurchase:
    return SeedPurchase(deal_id, cid, amount, "USD", closed, "won")


#: deal id: (amount, close date, the reason it is rejected); one contact each
BAD_DEALS = {
    "b1": ("1e27", "2025-12-01T12:00:00Z", f"won deal amount '1e+27' {RANGE}"),
    "b2": ("1e30", "2025-12-01T12:00:00Z", f"won deal amount '1e+30' {RANGE}"),
    "b3": ("1e400", "2025-12-01T12:00:00Z", "won deal amount 'inf' is not a number"),  # JSON Infinity
    "b4": ("1,234.50", "2025-12-01T12:00:00Z", "won deal amount '1,234.50' is not a number"),
    "b5": ("10", "", "won deal has no close date (close_date)"),
    "b6": ("10", "1850-06-01T00:00:00Z", f"closed on 1850-06-01, before 1900-01-01: {EARLY}"),
    "b7": (
        "10",
        "9999-12-31T23:59:59Z",
        f"closed on 9999-12-31, after the reference date 2026-01-15 (as_of); {LATER}",
    ),
    "b8": ("10", "2025-12-01T12:00:00Z", f"won deal close date (close_date) '31/12/2025' {UNREADABLE}"),
}


@pytest.fixture
def bad_data() -> SeedData:
    contacts = [_contact(str(200 + i)) for i in range(len(BAD_DEALS))]
    purchases = [
        _buy(deal_id, str(200 + i), amount, closed)
        for i, (deal_id, (amount, closed, _)) in enumerate(BAD_DEALS.items())
    ]
    contacts += [_contact("300"), _contact("301"), _contact("302"), _contact("303", email="")]
    purchases += [
        _buy("g1", "300", "100.00"),
        _buy("g2", "301", " 12 "),
        _buy("g3", "301", "1.5E3"),
        _buy("g4", "301", "-0"),
        _buy("g5", "301", "10", "1969-12-31T00:00:00Z"),
        *(_buy(f"big{i}", "302", "999999999999999.9") for i in range(3)),  # big but valid
        _buy("g6", "303", "50.00"),  # its contact has no email
    ]
    return SeedData(contacts, purchases)


def test_bad_deals_cost_only_themselves_and_big_valid_ones_are_written_back(
    clock: FakeClock, bad_data: SeedData, traffic_log: Path, tmp_path: Path
) -> None:
    sandbox = start_sandbox(clock, bad_data, traffic_log)
    try:
        with sandbox.server.lock:  # the sandbox seeds only readable dates; Brevo holds any text
            sandbox.deals["b8"].attributes["close_date"] = "31/12/2025"
        platform = connect(sandbox, clock)
        result = _sync(platform, clock, tmp_path / "state.db")
        assert result.report.status == "succeeded", result.report.error
        got = {r.record_id: r.reason for r in result.rejections if r.kind == "purchase"}
        assert got == {
            **{deal_id: reason for deal_id, (_, _, reason) in BAD_DEALS.items()},
            "g6": "contact 303 was rejected (missing email); its purchase is not counted",
        }
        fields = sandbox.snapshot()["fields"]
        assert isinstance(fields, dict)
        assert fields["300"]["segsync_revenue"] == "100"
        assert (fields["301"]["segsync_revenue"], fields["301"]["segsync_order_count"]) == ("1522", "4")
        assert fields["301"]["segsync_first_purchase"] == "1969-12-31"
        # 2999999999999999.7 has more digits than Brevo's floats keep: written as they read back
        assert Decimal(fields["302"]["segsync_revenue"]) == Decimal("3000000000000000")
        for i in range(len(BAD_DEALS)):
            assert "segsync_revenue" not in fields[str(200 + i)], "no bad deal counts for anyone"

        again = _sync(connect(sandbox, clock), clock, tmp_path / "state.db", dry_run=True)
        assert again.plan is not None
        assert not again.plan.writes_anything, "what was written reads back as the same values"
    finally:
        sandbox.stop()


def test_text_a_real_sdk_cannot_encode_stays_out_of_the_sync(clock: FakeClock, tmp_path: Path) -> None:
    contacts = [_contact("400", email="nul\x00@example.com"), _contact("401", email="half\ud800@example.com")]
    data = SeedData(
        [*contacts, _contact("402")],
        [_buy("n0", "400", "10"), _buy("n1", "401", "20"), _buy("n2", "402", "30")],
    )
    # unlogged: the session traffic log goes to spec-check, which reads strict UTF-8
    sandbox: BrevoSandbox = start_sandbox(clock, data, None)
    try:
        with sandbox.server.lock:
            sandbox.contacts[402].attributes["FIRSTNAME"] = "A\x00\ud800\u202eB"
        result = _sync(connect(sandbox, clock), clock, tmp_path / "state.db")
        assert result.report.status == "succeeded", result.report.error
        assert {(r.kind, r.record_id): r.reason for r in result.rejections} == {
            ("contact", "400"): "email holds a control character or an unpaired surrogate",
            ("contact", "401"): "email holds a control character or an unpaired surrogate",
            ("purchase", "n0"): "contact 400 was rejected (email holds a control character or an unpaired "
            "surrogate); its purchase is not counted",
            ("purchase", "n1"): "contact 401 was rejected (email holds a control character or an unpaired "
            "surrogate); its purchase is not counted",
        }
        assert result.desired is not None
        assert set(result.desired.values) == {"402"}
        assert result.desired.values["402"]["segsync_revenue"] == Decimal(30)
    finally:
        sandbox.stop()
