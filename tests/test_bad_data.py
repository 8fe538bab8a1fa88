"""Issue 7 ("Trust"): bad CRM data costs the record it is in, never the sync, and never silently.

The core's side: compute turns every purchase and contact into a value or a rejection that says
why (quoting the value), whatever a plugin passes it. The plugins' mapping and end-to-end tests
are in ``plugins/*/tests/test_bad_data.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.core.desired import Desired, compute
from segsync.core.features import summarise
from segsync.core.models import Contact, Purchase, Rejection
from segsync.core.record_checks import MAX_AMOUNT, as_written, quote, read_amount
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig, parse_config
from segsync.project.packs import load_packs

AS_OF = dt.date(2026, 1, 15)
ROOT = Path(__file__).resolve().parents[1]


#: every test here runs on the object path (the oracle) and on the columnar core
pytestmark = pytest.mark.usefixtures("both_computes")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    return parse_config('[segments]\npacks = ["rfm-standard", "lifecycle"]\n', ROOT / "segsync.toml")


def run(registry: Registry, config: ProjectConfig, contacts, purchases) -> Desired:
    packs = load_packs(config, registry)
    return compute(contacts, purchases, config=config, packs=packs, registry=registry, as_of=AS_OF)


def person(cid: str, email: str | None = None) -> Contact:
    return Contact(id=cid, email=f"c{cid}@example.com" if email is None else email)


def buy(pid: str, cid: str, amount: str, closed: dt.date | dt.datetime = dt.date(2025, 12, 1)) -> Purchase:
    when = closed if isinstance(closed, dt.datetime) else dt.datetime.combine(closed, dt.time(12))
    return Purchase(
        id=pid,
        contact_id=cid,
        amount=Decimal(amount),
        currency="USD",
        closed_at=when.replace(tzinfo=dt.UTC),
    )


def reasons(desired: Desired) -> dict[str, str]:
    return {r.record_id: r.reason for r in desired.rejections if r.kind == "purchase"}


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["1e27", "1e30", "1e400", "-1e27", "1000000000000000.01"])
def test_one_amount_out_of_range_is_one_rejection_and_everyone_else_computes(registry, config, amount):
    desired = run(
        registry,
        config,
        [person("1"), person("2")],
        [buy("big", "1", amount), buy("ok", "2", "40.00")],
    )
    assert reasons(desired) == {
        "big": f"amount {quote(Decimal(amount))} is out of range (at most 1,000,000,000,000,000 either way)"
    }
    assert desired.values["2"]["segsync_revenue"] == Decimal("40.00")
    assert desired.values["1"]["segsync_order_count"] is None, "nothing of the bad purchase counts"


def test_totals_of_many_purchases_at_the_bound_are_exact_and_written_as_a_double_holds_them(registry, config):
    n = 20_000
    purchases = [buy(f"p{i}", "1", str(MAX_AMOUNT)) for i in range(n)]
    purchases += [buy("cent", "1", "0.01"), buy("refund", "1", str(-MAX_AMOUNT))]
    exact = MAX_AMOUNT * (n - 1) + Decimal("0.01")
    summaries, rejections = summarise(purchases, config.rfm, AS_OF)
    assert not rejections
    assert summaries["1"].revenue == exact, "Decimal sums stay exact"
    desired = run(registry, config, [person("1")], purchases)
    row = desired.values["1"]
    assert not desired.rejections
    assert row["segsync_order_count"] == n + 1
    assert row["segsync_revenue"] == Decimal("1.99990000000000E+19")
    for written in (row["segsync_revenue"], row["segsync_average_order"]):
        assert isinstance(written, Decimal)
        assert Decimal(repr(float(written))) == written, "reads back from a CRM double unchanged"
    assert desired.summary.revenue == row["segsync_revenue"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("9999999999999.99", "9999999999999.99"),  # 15 digits: exact in a double
        ("12345678901234.56", "12345678901234.6"),
        ("2999999999999999.97", "3000000000000000"),
        ("-2999999999999999.97", "-3000000000000000"),
        ("0.00", "0.00"),
    ],
)
def test_written_numbers_keep_the_digits_a_double_holds(value, written):
    assert as_written(Decimal(value)) == Decimal(written)


def test_an_amount_that_is_not_finite_is_rejected(registry, config):
    bad = Purchase.model_construct(
        id="inf",
        contact_id="1",
        amount=Decimal("Infinity"),
        currency="USD",
        closed_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC),
    )
    desired = run(registry, config, [person("1")], [bad])
    assert reasons(desired) == {"inf": "amount is not a number"}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("120.50", Decimal("120.50")),
        (" 12 ", Decimal(12)),
        ("\u00a012\t", Decimal(12)),
        ("1.5E3", Decimal(1500)),
        ("-0", Decimal(0)),
        ("-0.00", Decimal(0)),
        ("1e-400", Decimal(0)),
        ("0.1234567", Decimal("0.123457")),
        ("-25", Decimal(-25)),
        ("1e15", MAX_AMOUNT),
        (12.5, Decimal("12.5")),
        (7, Decimal(7)),
    ],
)
def test_read_amount_values(raw, value):
    got = read_amount(raw)
    assert isinstance(got, Decimal)
    assert got == value
    assert not got.is_signed() or got < 0, "-0 is not a refund"
    assert got.as_tuple().exponent >= -6  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1e27", "'1e27' is out of range (at most 1,000,000,000,000,000 either way)"),
        (1e27, "'1e+27' is out of range (at most 1,000,000,000,000,000 either way)"),
        pytest.param(
            -(10**5000),
            "<a int too long to show> is out of range (at most 1,000,000,000,000,000 either way)",
            id="a 5001-digit int",
        ),
        ("NaN", "'NaN' is not a number"),
        ("-Infinity", "'-Infinity' is not a number"),
        (float("nan"), "'nan' is not a number"),
        ("1,234.50", "'1,234.50' is not a number"),
        ("12\x00", "'12\\x00' is not a number"),
        ("\ud800", "'\\ud800' is not a number"),
        (True, "'True' is not a number"),
        ("ask bob@example.com", "'ask <email>' is not a number"),
        ("9" * 100, f"'{'9' * 60}…' is out of range (at most 1,000,000,000,000,000 either way)"),
    ],
)
def test_read_amount_reasons_quote_the_value(raw, reason):
    assert read_amount(raw) == reason


# -- dates -------------------------------------------------------------------------------------


def test_purchases_after_as_of_are_rejected_quoting_both_dates(registry, config):
    desired = run(
        registry,
        config,
        [person("1")],
        [
            buy("now", "1", "10", AS_OF),
            buy("next", "1", "10", AS_OF + dt.timedelta(days=1)),
            buy("far", "1", "10", dt.datetime(9999, 12, 31, 23, 59, 59)),
        ],
    )
    assert reasons(desired) == {
        "next": "closed on 2026-01-16, after the reference date 2026-01-15 (as_of); "
        "it counts in runs on or after that day",
        "far": "closed on 9999-12-31, after the reference date 2026-01-15 (as_of); "
        "it counts in runs on or after that day",
    }
    assert desired.values["1"]["segsync_order_count"] == 1


def test_purchases_before_1900_are_rejected(registry, config):
    offset = dt.timezone(dt.timedelta(hours=14))
    desired = run(
        registry,
        config,
        [person("1")],
        [
            buy("y1", "1", "10", dt.date(1, 1, 1)),
            Purchase(
                id="y1+14",
                contact_id="1",
                amount=Decimal(10),
                closed_at=dt.datetime(1, 1, 1, tzinfo=offset),
            ),
            buy("1969", "1", "10", dt.date(1969, 12, 31)),
        ],
    )
    too_early = (
        "closed on 0001-01-01, before 1900-01-01: a typo or a placeholder date; correct the close date "
    )
    too_early += "in the CRM"
    assert reasons(desired) == {"y1": too_early, "y1+14": too_early}
    assert desired.values["1"]["segsync_first_purchase"] == dt.date(1969, 12, 31)


# -- contacts ----------------------------------------------------------------------------------


def test_purchases_of_a_contact_without_email_are_rejected_with_it(registry, config):
    desired = run(
        registry,
        config,
        [person("123", email=""), person("124")],
        [buy("a", "123", "10"), buy("b", "123", "20"), buy("c", "124", "30"), buy("d", "999", "5")],
    )
    assert {(r.kind, r.record_id): r.reason for r in desired.rejections} == {
        ("contact", "123"): "missing email",
        ("purchase", "a"): "contact 123 was rejected (missing email); its purchase is not counted",
        ("purchase", "b"): "contact 123 was rejected (missing email); its purchase is not counted",
        ("purchase", "d"): "contact 999 was not among the pulled contacts (deleted or not a contact)",
    }
    assert desired.summary.rejected == 4


def test_a_duplicate_contacts_purchases_count_for_its_first_copy(registry, config):
    desired = run(registry, config, [person("1"), person("1")], [buy("a", "1", "10")])
    assert [r.kind for r in desired.rejections] == ["contact"]
    assert desired.values["1"]["segsync_order_count"] == 1


@pytest.mark.parametrize("email", ["ada\x00@example.com", "ada\ud800@example.com", "ada\n@example.com"])
def test_an_email_that_cannot_be_sent_is_a_rejection_that_does_not_quote_it(registry, config, email):
    desired = run(registry, config, [person("1", email=email), person("2")], [buy("a", "1", "10")])
    assert {(r.kind, r.record_id): r.reason for r in desired.rejections} == {
        ("contact", "1"): "email holds a control character or an unpaired surrogate",
        ("purchase", "a"): "contact 1 was rejected (email holds a control character or an unpaired "
        "surrogate); its purchase is not counted",
    }
    assert set(desired.values) == {"2"}


def test_odd_unicode_in_properties_is_just_text(registry, config):
    contact = Contact(
        id="1",
        email="c1@example.com",
        properties={"firstname": "A\x00\ud800\u202e\U0001f600", "age": "1e999"},
    )
    desired = run(registry, config, [contact], [buy("a", "1", "10")])
    assert not desired.rejections
    assert desired.values["1"]["segsync_order_count"] == 1


def test_rejections_escape_unpaired_surrogates_so_they_can_be_stored():
    r = Rejection(kind="purchase", record_id="d\udc80", reason="amount '\ud800x' is not a number")
    assert r.record_id == "d\\udc80"
    assert r.reason == "amount '\\ud800x' is not a number"
    assert (r.record_id + r.reason).encode()
    assert Rejection(kind="contact", record_id="1", reason="ok ✓").reason == "ok ✓"
