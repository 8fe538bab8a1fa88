"""Golden tests: the columnar core gives exactly what the object path (the oracle) gives.

:func:`segsync.core.desired.compute` builds one Python object per record and loops; it is kept
as the oracle. :func:`segsync.core.columns.objects.compute` scores over columns. For the demo
store, CDNOW-like data at 100k purchases, a table of edge cases and random data (hypothesis),
every contact's every field, every membership, every segment, every movement, every rejection
and the run's summary figures must be identical.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segsync import hookimpl
from segsync.core.columns.objects import compute as columnar
from segsync.core.columns.objects import compute_rows as from_ledger
from segsync.core.desired import Desired
from segsync.core.desired import compute as oracle
from segsync.core.models import Contact, Purchase
from segsync.core.record_checks import read_amount
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig, parse_config
from segsync.project.packs import load_packs
from segsync.sandbox.demo import demo_dataset
from segsync.sync.state import StateStore

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2025, 6, 30)

#: A pack exercising what the shipped packs do not: properties (typed, garbled), not/any,
#: presence tests, dates, money and average thresholds that are not whole cents.
EXTRA_PACK = """
[pack]
name = "golden"

[[sets]]
key = "mix"
label = "Mix"
mode = "independent"

[[sets.segments]]
key = "adults_fr"
name = "Adults in France"
when = { all = [ { field = "age", op = "gte", value = 18 }, { field = "country", op = "in", value = ["FR", "fr"] } ] }

[[sets.segments]]
key = "no_age"
name = "No age"
when = { field = "age", op = "exists", value = false }

[[sets.segments]]
key = "not_old"
name = "Not over 40"
when = { not = { field = "age", op = "gt", value = 40 } }

[[sets.segments]]
key = "odd_money"
name = "Odd money"
when = { any = [ { field = "revenue", op = "gt", value = 99.995 }, { field = "average_order", op = "lte", value = 33.333 } ] }

[[sets.segments]]
key = "recent_signup"
name = "Recent signup"
when = { all = [ { field = "createdate", op = "within_last_days", value = 90 }, { field = "has_purchased", op = "eq", value = false } ] }

[[sets.segments]]
key = "exact"
name = "Exact"
when = { any = [ { field = "revenue", op = "eq", value = 100 }, { field = "average_order", op = "between", value = [10, 20.5] }, { field = "rfm_score", op = "in", value = ["555", "111"] } ] }

[[sets.segments]]
key = "days"
name = "Days"
when = { any = [ { field = "days_since_last_purchase", op = "lt", value = 10.5 }, { field = "days_since_first_purchase", op = "gte", value = 300 }, { field = "last_purchase", op = "gt", value = "2025-06-01" } ] }

[[sets]]
key = "tiers"
label = "Tiers"
mode = "exclusive"
field = "segsync_tier"
allow_gaps = true

[[sets.segments]]
key = "gold"
name = "Gold"
when = { all = [ { field = "order_count", op = "gte", value = 3 }, { field = "rfm_m", op = "gte", value = 4 } ] }

[[sets.segments]]
key = "silver"
name = "Silver"
when = { field = "first_purchase", op = "older_than_days", value = 30 }
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


def project(tmp: Path, rfm: str = "", extra: bool = True) -> ProjectConfig:
    packs = '"rfm-standard", "lifecycle"' + (', "./golden.toml"' if extra else "")
    if extra:
        (tmp / "golden.toml").write_text(EXTRA_PACK)
    text = f"[rfm]\n{rfm}\n[segments]\npacks = [{packs}]\n"
    return parse_config(text, tmp / "segsync.toml")


def assert_same(contacts, purchases, config, registry, as_of=AS_OF) -> Desired:
    """The columnar compute equals the oracle on these records, and so does the engine's path:
    the records saved to a state store's ledger, scored from its columns (against the oracle
    on what the store gives back: it keeps the last copy of a repeated purchase)."""
    packs = load_packs(config, registry)
    want = oracle(contacts, purchases, config=config, packs=packs, registry=registry, as_of=as_of)
    got = columnar(contacts, purchases, config=config, packs=packs, registry=registry, as_of=as_of)
    same(got, want)
    with tempfile.TemporaryDirectory() as folder, StateStore(Path(folder) / "state.db") as store:
        store.save_purchases("p", "a", purchases, replace_all=True, cursor=None)
        kept = store.purchases("p", "a")
        want = oracle(contacts, kept, config=config, packs=packs, registry=registry, as_of=as_of)
        rows = store.ledger_rows("p", "a")
        got = from_ledger(contacts, rows, config=config, packs=packs, registry=registry, as_of=as_of)
        same(got, want)
    return want


def same(got: Desired, want: Desired) -> None:
    assert got.fields == want.fields
    assert got.lists == want.lists
    assert got.values.keys() == want.values.keys()
    for cid, row in want.values.items():
        assert got.values[cid] == row, cid
        for key, value in row.items():  # 12.5 == 12.50, but the CRM is written the text
            assert str(got.values[cid][key]) == str(value), (cid, key)
    assert got.members == want.members
    assert got.matched == want.matched
    assert got.segments == want.segments
    assert sorted(got.changes) == sorted(want.changes)
    assert sorted(got.rejections, key=repr) == sorted(want.rejections, key=repr)
    assert got.summary == want.summary


def buy(pid, cid, amount, days_ago, currency="USD", hour=12):
    day = AS_OF - dt.timedelta(days=days_ago)
    return Purchase(
        id=pid,
        contact_id=cid,
        amount=Decimal(amount),
        currency=currency,
        closed_at=dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC),
    )


def person(cid, **props):
    return Contact(id=cid, email=f"c{cid}@example.com", properties=props)


# -- the demo store and CDNOW-like data -----------------------------------------------------


def demo_records(as_of: dt.date) -> tuple[list[Contact], list[Purchase]]:
    """The demo store as a platform maps it: won deals with readable amounts and dates."""
    data = demo_dataset(as_of, contacts=3000)
    contacts = [
        Contact(
            id=c.id,
            email=c.email or None,
            properties={"country": c.country, "age": c.age, "createdate": c.createdate, "city": c.city},
        )
        for c in data.contacts
    ]
    purchases = []
    for p in data.purchases:
        amount = read_amount(p.amount)
        if p.stage != "won" or not isinstance(amount, Decimal) or not p.closedate:
            continue
        closed = dt.datetime.fromisoformat(p.closedate.replace("Z", "+00:00"))
        purchases.append(
            Purchase(
                id=p.deal_id, contact_id=p.contact_id, amount=amount, currency=p.currency, closed_at=closed
            )
        )
    return contacts, purchases


@pytest.mark.parametrize("rfm", ["", 'monetary = "average"\nfrequency_window_days = 365'])
def test_demo_store(tmp_path, registry, rfm):
    contacts, purchases = demo_records(AS_OF)
    want = assert_same(contacts, purchases, project(tmp_path, rfm), registry)
    assert want.summary.customers > 1000
    assert want.rejections  # the demo's broken records are there


def test_cdnow_like_100k(tmp_path, registry):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from datagen import AS_OF as BENCH_AS_OF
        from datagen import generate
    finally:
        sys.path.pop(0)
    cols = generate(100_000, seed=3)
    ids = sorted(set(cols["contact"].tolist()))
    contacts = [person(str(i), age=str(18 + i % 60), country="FR" if i % 3 else "DE") for i in ids]
    contacts += [person(f"p{i}") for i in range(500)]  # prospects
    purchases = [
        Purchase(
            id=f"d{n}",
            contact_id=str(c),
            amount=Decimal(cents).scaleb(-2),
            closed_at=dt.datetime.combine(dt.date.fromordinal(day), dt.time(9), tzinfo=dt.UTC),
        )
        for n, (c, day, cents) in enumerate(
            zip(cols["contact"].tolist(), cols["day"].tolist(), cols["cents"].tolist(), strict=True)
        )
    ]
    want = assert_same(contacts, purchases, project(tmp_path), registry, as_of=BENCH_AS_OF)
    assert want.summary.customers == len(ids)


# -- edge cases -----------------------------------------------------------------------------

EVERYONE = [person(str(i), age=str(20 + 5 * i), country="FR") for i in range(1, 11)]

EDGE_CASES = {
    "ties at every cut-off": (
        EVERYONE,
        [buy(f"d{i}", str(i), str(10 * (i // 2 + 1)), 10 * (i // 2)) for i in range(1, 11)],
    ),
    "one customer": (EVERYONE[:1], [buy("d1", "1", "10", 5)]),
    "all equal": (EVERYONE, [buy(f"d{i}", str(i), "25.00", 7) for i in range(1, 11)]),
    "zero and negative amounts": (
        EVERYONE,
        [
            buy("d1", "1", "0", 3),
            buy("d2", "2", "-5", 3),
            buy("d3", "2", "10", 40),
            buy("d4", "3", "0.00", 1),
        ],
    ),
    "refunds larger than orders": (
        EVERYONE[:3],
        [
            buy("d1", "1", "50", 10),
            buy("r1", "1", "-80", 5),
            buy("d2", "2", "20", 1),
            buy("r2", "3", "-10", 2),
        ],
    ),
    "other currencies": (
        EVERYONE[:4],
        [
            buy("d1", "1", "10", 1, "EUR"),
            buy("d2", "1", "20", 2, "usd"),
            buy("d3", "2", "5", 3, ""),
            buy("d4", "3", "7", 4, None),
        ],
    ),
    "contacts without purchases": (
        EVERYONE + [person("p1"), person("p2", age="abc")],
        [buy("d1", "1", "10", 1)],
    ),
    "dates out of range and same-day ties": (
        EVERYONE[:3],
        [
            buy("d1", "1", "10", -1),
            buy("d2", "1", "10", 0, hour=1),
            buy("d3", "1", "11", 0, hour=23),
            Purchase(
                id="d4", contact_id="2", amount=Decimal(5), closed_at=dt.datetime(1899, 12, 31, tzinfo=dt.UTC)
            ),
            Purchase(id="d5", contact_id="3", amount=Decimal(5), closed_at=dt.datetime(2025, 6, 29, 23, 0)),
        ],
    ),
    "duplicates and orphans": (
        EVERYONE[:3] + [Contact(id="9", email=None), person("2")],
        [
            buy("d1", "1", "10", 1),
            buy("d1", "1", "12", 1),
            buy("d2", "9", "10", 1),
            buy("d3", "404", "1", 1),
            buy("d4", "", "1", 1),
            buy("d5", "2", "3", 2),
        ],
    ),
    "absurd amounts": (
        EVERYONE[:3],
        [
            buy("d1", "1", "1e15", 1),
            buy("d2", "1", "1e15", 2),
            buy("d3", "2", "-1e15", 3),
            buy("d4", "2", "1e16", 1),
            Purchase.model_construct(
                id="d5",
                contact_id="3",
                amount=Decimal("NaN"),
                currency=None,
                closed_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            ),
        ],
    ),
    "garbled properties": (
        [person("1", age="12abc", country=" FR "), person("2", age="", country=""), person("3", age=" 41 ")],
        [buy("d1", "1", "10", 1)],
    ),
}

SETTINGS = {
    "defaults": "",
    "fixed cut-offs": 'cutoffs = "fixed"\nrecency_days_cutoffs = [3, 10, 30, 90]\nfrequency_cutoffs = [2, 3, 5, 8]\nmonetary_cutoffs = [10.005, 20, 50, 99.99]',
    "average, window": 'monetary = "average"\nfrequency_window_days = 5',
    "fixed average": 'bins = 3\ncutoffs = "fixed"\nrecency_days_cutoffs = [5, 30]\nfrequency_cutoffs = [2, 4]\nmonetary_cutoffs = [10, 33.333]\nmonetary = "average"',
    "ignore refunds and zeros, 10 bins": 'bins = 10\nrefunds = "ignore"\nzero_amounts = "ignore"\nwrite_recency_days = false',
}


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize("rfm", SETTINGS)
def test_edge_cases(tmp_path, registry, case, rfm):
    contacts, purchases = EDGE_CASES[case]
    assert_same(contacts, purchases, project(tmp_path, SETTINGS[rfm]), registry)


def test_history_is_carried_from_the_crm(tmp_path, registry):
    """Previous segment and since-date come from what each contact's CRM record holds."""
    config = project(tmp_path)
    contacts, purchases = demo_records(AS_OF)
    first = oracle(
        contacts, purchases, config=config, packs=load_packs(config, registry), registry=registry, as_of=AS_OF
    )
    later = [c.model_copy(update={"managed": first.values.get(c.id, {})}) for c in contacts]
    assert_same(later, purchases, config, registry, as_of=AS_OF + dt.timedelta(days=45))


# -- random data ----------------------------------------------------------------------------

#: Whole cents: the ledger keeps cents (sub-cent amounts are rounded per purchase, tested below).
amounts = st.sampled_from(
    ["0", "0.01", "-3.50", "10", "10.00", "19.99", "25", "100", "-100", "99.99", "1234.56"]
)
days_ago = st.integers(min_value=-2, max_value=800)
purchase_rows = st.lists(
    st.tuples(
        st.integers(0, 30), st.integers(0, 12), amounts, days_ago, st.sampled_from(["USD", "EUR", None])
    ),
    max_size=60,
)
people = st.lists(
    st.tuples(st.sampled_from(["", "17", "18", "41", "x", "40.5"]), st.sampled_from(["FR", "fr", "DE", ""])),
    min_size=0,
    max_size=12,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=people, rows=purchase_rows, rfm=st.sampled_from(sorted(SETTINGS)))
def test_random_data(tmp_path, registry, people, rows, rfm):
    contacts = [person(str(i), age=age, country=country) for i, (age, country) in enumerate(people)]
    purchases = [buy(f"d{d}", str(c), a, ago, cur) for d, c, a, ago, cur in rows]
    assert_same(contacts, purchases, project(tmp_path, SETTINGS[rfm]), registry)


def test_amounts_are_kept_to_the_cent(tmp_path, registry):
    """The one documented difference: the ledger rounds each amount half up to the cent, where
    the object path summed the exact amounts (0.005 + 0.005: 0.02 here, 0.01 there)."""
    config = project(tmp_path, extra=False)
    packs = load_packs(config, registry)
    purchases = [
        buy("d1", "1", "0.005", 1),
        buy("d2", "1", "0.005", 2),
        buy("d3", "2", "-0.015", 1),
        buy("d4", "2", "1", 1),
    ]
    got = columnar(EVERYONE[:2], purchases, config=config, packs=packs, registry=registry, as_of=AS_OF)
    assert got.values["1"]["segsync_revenue"] == Decimal("0.02")
    assert got.values["2"]["segsync_revenue"] == Decimal("0.98")


# -- plugin features and operators, with and without a vector form --------------------------

PLUGIN_PACK = """
[pack]
name = "plugged"

[[sets]]
key = "plug"
label = "Plug"
mode = "independent"

[[sets.segments]]
key = "domain"
name = "Example domain"
when = { field = "email", op = "endswith", value = "7@example.com" }

[[sets.segments]]
key = "loyal"
name = "Loyal"
when = { field = "orders_squared", op = "gte", value = 4 }

[[sets.segments]]
key = "big"
name = "Big"
when = { field = "big_spender", op = "eq", value = true }
"""


class Plugged:
    """A plugin with a per-contact feature, a vector feature and an operator without a vector form."""

    @hookimpl
    def register_features(self, register):
        register.add_feature("orders_squared", lambda c, s, as_of: s.orders**2 if s else None)

        def big(frame):
            return [bool(r >= 5000) for r in frame.agg.revenue.tolist()]

        register.add_feature(
            "big_spender", lambda c, s, as_of: bool(s and s.revenue >= 50), type="boolean", vector=big
        )

    @hookimpl
    def register_rule_operators(self, register):
        register.add_operator("endswith", lambda v, arg, as_of: str(v).endswith(arg), types=("string",))


def test_plugin_features_and_operators(tmp_path):
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(Plugged(), name="plugged")
    registry = build_registry(pm)
    (tmp_path / "plugged.toml").write_text(PLUGIN_PACK)
    config = parse_config(
        '[segments]\npacks = ["rfm-standard", "./plugged.toml"]\n', tmp_path / "segsync.toml"
    )
    contacts, purchases = demo_records(AS_OF)
    want = assert_same(contacts, purchases, config, registry)
    assert all(want.matched["plug"].values())  # every plugged segment has members
