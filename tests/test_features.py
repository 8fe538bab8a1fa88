"""Purchase aggregation (every [rfm] purchase choice) and the built-in features."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from segsync.core.features import BUILTIN_FEATURES, RFM_FEATURES, summarise
from segsync.core.models import Contact, Purchase, PurchaseSummary
from segsync.errors import PluginError
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.config import RfmSettings

AS_OF = dt.date(2025, 6, 30)


def buy(
    pid: str, cid: str, amount: str, days_ago: int, currency: str | None = "USD", hour: int = 12
) -> Purchase:
    day = AS_OF - dt.timedelta(days=days_ago)
    return Purchase(
        id=pid,
        contact_id=cid,
        amount=Decimal(amount),
        currency=currency,
        closed_at=dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC),
    )


def one(purchases: list[Purchase], **settings: object) -> PurchaseSummary:
    summaries, rejections = summarise(purchases, RfmSettings(**settings), AS_OF)
    assert not rejections
    (summary,) = summaries.values()
    return summary


def test_aggregates():
    s = one([buy("1", "c", "10.00", 100), buy("2", "c", "30.00", 5), buy("3", "c", "20.00", 50)])
    assert s.orders == 3
    assert s.revenue == Decimal("60.00")
    assert s.average_order == Decimal(20)
    assert s.first_purchase.date() == AS_OF - dt.timedelta(days=100)
    assert s.last_purchase.date() == AS_OF - dt.timedelta(days=5)


def test_same_day_purchases_keep_the_true_first_and_last_time():
    s = one([buy("1", "c", "1", 0, hour=15), buy("2", "c", "1", 0, hour=9), buy("3", "c", "1", 0, hour=18)])
    assert s.first_purchase.hour == 9
    assert s.last_purchase.hour == 18


def test_naive_and_aware_datetimes_mix():
    naive = Purchase(id="n", contact_id="c", amount=Decimal(1), closed_at=dt.datetime(2025, 6, 1, 8))
    s = one([buy("1", "c", "1", 29, hour=12), naive])
    assert s.first_purchase == naive.closed_at


def test_duplicates_keep_the_first_and_are_rejected():
    summaries, rejections = summarise(
        [buy("1", "c", "10", 3), buy("1", "c", "99", 2), buy("1", "d", "10", 3)], RfmSettings(), AS_OF
    )
    assert summaries["c"].orders == 1
    assert summaries["c"].revenue == Decimal(10)
    assert summaries["d"].orders == 1  # same deal, another buyer: not a duplicate
    assert [(r.kind, r.record_id) for r in rejections] == [("purchase", "1")]
    assert "duplicate" in rejections[0].reason


@pytest.mark.parametrize("currency", ["EUR", "gbp"])
def test_other_currency_is_rejected_never_summed(currency):
    summaries, rejections = summarise(
        [buy("1", "c", "10", 3), buy("2", "c", "500", 2, currency=currency)], RfmSettings(), AS_OF
    )
    assert summaries["c"].revenue == Decimal(10)
    (rejection,) = rejections
    assert rejection.record_id == "2"
    assert currency.upper() in rejection.reason
    assert "USD" in rejection.reason


def test_currency_matching_is_case_insensitive_and_unknown_currency_is_home():
    s = one([buy("1", "c", "10", 3, currency="usd"), buy("2", "c", "5", 2, currency=None)])
    assert s.revenue == Decimal(15)
    s = one([buy("1", "c", "10", 3, currency="EUR")], currency="eur")
    assert s.revenue == Decimal(10)


def test_not_a_number_amount_is_rejected():
    bad = Purchase.model_construct(
        id="x",
        contact_id="c",
        amount=Decimal("NaN"),
        currency="USD",
        closed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    summaries, rejections = summarise([bad], RfmSettings(), AS_OF)
    assert summaries == {}
    assert rejections[0].reason == "amount is not a number"


def test_purchases_after_as_of_are_ignored():
    summaries, rejections = summarise([buy("1", "c", "10", 3), buy("2", "c", "99", -1)], RfmSettings(), AS_OF)
    assert [r.record_id for r in rejections] == ["2"]  # issue 7: recorded, no longer silent
    (s,) = summaries.values()
    assert s.orders == 1
    assert s.last_purchase.date() == AS_OF - dt.timedelta(days=3)
    summaries, _ = summarise([buy("2", "c", "99", -1)], RfmSettings(), AS_OF)
    assert summaries == {}


@pytest.mark.parametrize(
    ("refunds", "orders", "revenue"),
    [("subtract", 2, Decimal(70)), ("ignore", 2, Decimal(100))],
)
def test_refunds(refunds, orders, revenue):
    s = one([buy("1", "c", "60", 20), buy("2", "c", "40", 10), buy("3", "c", "-30", 1)], refunds=refunds)
    assert s.orders == orders
    assert s.revenue == revenue
    assert s.last_purchase.date() == AS_OF - dt.timedelta(days=10)  # a refund is not a purchase


def test_refunds_alone_do_not_make_a_customer():
    summaries, rejections = summarise([buy("1", "c", "-30", 1)], RfmSettings(), AS_OF)
    assert summaries == {}
    assert rejections == []


@pytest.mark.parametrize(("zero", "orders", "first_days_ago"), [("count", 2, 40), ("ignore", 1, 10)])
def test_zero_amounts(zero, orders, first_days_ago):
    s = one([buy("1", "c", "0", 40), buy("2", "c", "25", 10)], zero_amounts=zero)
    assert s.orders == orders
    assert s.revenue == Decimal(25)
    assert s.first_purchase.date() == AS_OF - dt.timedelta(days=first_days_ago)


def test_only_zero_amounts_ignored_means_no_customer():
    summaries, _ = summarise([buy("1", "c", "0", 4)], RfmSettings(zero_amounts="ignore"), AS_OF)
    assert summaries == {}


def test_frequency_window_counts_recent_orders_but_recency_uses_all_history():
    purchases = [
        buy("1", "c", "100", 400),
        buy("2", "c", "10", 365),
        buy("3", "c", "20", 30),
        buy("4", "c", "-5", 366),
    ]
    s = one(purchases, frequency_window_days=365)
    assert s.orders == 2  # 365 days ago is inside a 365-day window; 400 is not
    assert s.revenue == Decimal(30)  # the refund 366 days ago is outside too
    assert s.first_purchase.date() == AS_OF - dt.timedelta(days=400)
    old = one([buy("1", "c", "100", 400)], frequency_window_days=365)
    assert old.orders == 0
    assert old.revenue == 0
    assert old.average_order == 0


def test_input_order_does_not_matter():
    purchases = [buy(str(i), f"c{i % 7}", f"{i}.50", i % 90, hour=i % 24) for i in range(300)]
    purchases.append(buy("0", "c0", "999", 1))  # a duplicate: which copy is first must not depend on order
    expected, _ = summarise(purchases, RfmSettings(), AS_OF)
    shuffled = purchases[:-1]
    random.Random(3).shuffle(shuffled)
    again, _ = summarise([purchases[0], *shuffled, purchases[-1]], RfmSettings(), AS_OF)
    assert again == expected


# -- features --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


def test_every_builtin_feature_is_registered_with_its_type(registry):
    for name, _, ftype, description in BUILTIN_FEATURES:
        assert registry.features[name].type == ftype
        assert registry.features[name].description == description
        assert registry.features[name].plugin == "segsync.default_plugins.features"
    for name, (ftype, _) in RFM_FEATURES.items():
        assert registry.features[name].type == ftype


SUMMARY = PurchaseSummary(
    orders=4,
    revenue=Decimal("100.00"),
    first_purchase=dt.datetime(2025, 1, 1, 10, tzinfo=dt.UTC),
    last_purchase=dt.datetime(2025, 6, 20, 10, tzinfo=dt.UTC),
)


@pytest.mark.parametrize(
    ("name", "bought", "never"),
    [
        ("first_purchase", dt.date(2025, 1, 1), None),
        ("last_purchase", dt.date(2025, 6, 20), None),
        ("order_count", 4, 0),
        ("revenue", Decimal(100), Decimal(0)),
        ("average_order", Decimal(25), None),
        ("days_since_last_purchase", 10, None),
        ("days_since_first_purchase", 180, None),
        ("has_purchased", True, False),
    ],
)
def test_builtin_feature_values(registry, name, bought, never):
    compute = registry.features[name].compute
    contact = Contact(id="1", email="a@example.com")
    assert compute(contact, SUMMARY, AS_OF) == bought
    assert compute(contact, None, AS_OF) == never


def test_average_order_is_empty_without_orders_in_the_window(registry):
    no_orders = SUMMARY.model_copy(update={"orders": 0, "revenue": Decimal(0)})
    assert registry.features["average_order"].compute(Contact(id="1"), no_orders, AS_OF) is None


@pytest.mark.parametrize("name", sorted(RFM_FEATURES))
def test_rfm_features_refuse_per_contact_use(registry, name):
    with pytest.raises(PluginError, match=f"feature '{name}' is scored across all customers"):
        registry.features[name].compute(Contact(id="1"), SUMMARY, AS_OF)


def test_purchases_of_other_contacts_are_left_out_and_handed_back():
    purchases = [
        buy("1", "c", "10", 3),
        buy("2", "x", "20", 3),
        buy("3", "x", "30", 2),
        buy("4", "c", "5", 1),
    ]
    skipped: list[Purchase] = []
    summaries, rejections = summarise(purchases, RfmSettings(), AS_OF, contacts={"c"}, skipped=skipped)
    assert set(summaries) == {"c"}
    assert summaries["c"].revenue == Decimal(15)
    assert [p.id for p in skipped] == ["2", "3"]
    assert rejections == []
