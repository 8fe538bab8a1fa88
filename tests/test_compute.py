"""compute(): managed values, lists, members, segment history, rejections, idempotence."""

from __future__ import annotations

import datetime as dt
import gc
import random
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.core.desired import (
    Desired,
    Movement,
    compute,
    desired_fields,
    desired_lists,
    required_properties,
)
from segsync.core.models import Contact, Purchase
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig, parse_config
from segsync.project.packs import load_packs

AS_OF = dt.date(2025, 6, 30)
ROOT = Path(__file__).resolve().parents[1]
RFM_KEYS = [
    "segsync_rfm_segment",
    "segsync_rfm_r_score",
    "segsync_rfm_f_score",
    "segsync_rfm_m_score",
    "segsync_rfm_score",
    "segsync_recency_days",
    "segsync_order_count",
    "segsync_revenue",
    "segsync_average_order",
    "segsync_first_purchase",
    "segsync_last_purchase",
    "segsync_previous_segment",
    "segsync_segment_since",
]


#: every test here runs on the object path (the oracle) and on the columnar core
pytestmark = pytest.mark.usefixtures("both_computes")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


def project(text: str = "") -> ProjectConfig:
    return parse_config(text, ROOT / "segsync.toml")


def buy(pid: str, cid: str, amount: str, days_ago: int, currency: str = "USD") -> Purchase:
    day = AS_OF - dt.timedelta(days=days_ago)
    return Purchase(
        id=pid,
        contact_id=cid,
        amount=Decimal(amount),
        currency=currency,
        closed_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
    )


def person(cid: str, email: str | None = "x@example.com", **properties: str) -> Contact:
    return Contact(id=cid, email=email and email.replace("x@", f"c{cid}@"), properties=properties)


CONTACTS = [
    person("1"),
    person("2"),
    person("3"),
    person("4", email=None),
    person("5"),
    person("1"),  # a duplicate
    person("6"),
    person("7"),
]
PURCHASES = [
    *(buy(f"1-{i}", "1", "200.00", 2 + i) for i in range(8)),  # frequent and recent
    buy("2-1", "2", "35.50", 400),  # once, long ago
    buy("4-1", "4", "80.00", 3),  # the contact has no email: rejected with it
    buy("5-1", "5", "99.99", 10),
    buy("5-2", "5", "20.00", 11, currency="EUR"),
    buy("6-1", "6", "10.00", 200),
    buy("6-2", "6", "10.01", 100),
    buy("7-1", "7", "500.00", 30),
    buy("x-1", "99", "75.00", 5),  # nobody we pulled
]


def run(
    config: ProjectConfig, registry: Registry, contacts=CONTACTS, purchases=PURCHASES, as_of=AS_OF
) -> Desired:
    return compute(
        contacts, purchases, config=config, packs=load_packs(config, registry), registry=registry, as_of=as_of
    )


@pytest.fixture(scope="module")
def desired(registry) -> Desired:
    return run(project('[segments]\npacks = ["rfm-standard", "lifecycle"]\n'), registry)


def test_fields(desired):
    assert [f.key for f in desired.fields] == RFM_KEYS
    by_key = {f.key: f for f in desired.fields}
    segment = by_key["segsync_rfm_segment"]
    assert segment.type == "enumeration"
    assert [o.value for o in segment.options][:2] == ["champions", "loyal_customers"]
    assert segment.options[0].label == "Champions"
    assert len(segment.options) == 11
    assert by_key["segsync_previous_segment"].options == segment.options
    assert by_key["segsync_rfm_score"].type == "string"
    assert by_key["segsync_segment_since"].type == "date"
    assert by_key["segsync_revenue"].type == "number"


def test_lists(desired):
    by_key = {spec.key: spec for spec in desired.lists}
    assert len(by_key) == 15  # 10 RFM segments (no purchase keeps none) + 5 lifecycle
    champions = by_key["rfm.champions"]
    assert champions.name == "segsync · Champions"
    assert (champions.filter_field, champions.filter_value) == ("segsync_rfm_segment", "champions")
    assert "rfm.no_purchase" not in by_key
    vip = by_key["lifecycle.vip"]
    assert (vip.filter_field, vip.filter_value) == (None, None)
    assert set(desired.members) == set(by_key)


def test_every_accepted_contact_gets_every_managed_key(desired):
    assert sorted(desired.values) == ["1", "2", "3", "5", "6", "7"]
    for row in desired.values.values():
        assert list(row) == RFM_KEYS


def test_rejections(desired):
    assert {(r.kind, r.record_id): r.reason for r in desired.rejections} == {
        ("contact", "4"): "missing email",
        ("contact", "1"): "duplicate contact id; the first copy is used",
        ("purchase", "x-1"): "contact 99 was not among the pulled contacts (deleted or not a contact)",
        ("purchase", "5-2"): "amount is in EUR, not the home currency USD; amounts in other currencies are "
        "never summed (set [rfm] currency or convert it in the CRM)",
        ("purchase", "4-1"): "contact 4 was rejected (missing email); its purchase is not counted",
    }
    assert desired.summary.rejected == 5


def test_customer_values(desired):
    row = desired.values["1"]
    assert row["segsync_order_count"] == 8
    assert row["segsync_revenue"] == Decimal("1600.00")
    assert str(row["segsync_revenue"]) == "1600.00"
    assert row["segsync_average_order"] == Decimal("200.00")
    assert row["segsync_last_purchase"] == AS_OF - dt.timedelta(days=2)
    assert row["segsync_first_purchase"] == AS_OF - dt.timedelta(days=9)
    assert row["segsync_recency_days"] == 2
    assert (
        row["segsync_rfm_score"]
        == f"{row['segsync_rfm_r_score']}{row['segsync_rfm_f_score']}{row['segsync_rfm_m_score']}"
    )
    assert row["segsync_rfm_segment"] == "champions"
    assert row["segsync_previous_segment"] is None
    assert row["segsync_segment_since"] == AS_OF
    assert str(desired.values["6"]["segsync_average_order"]) == "10.01"  # 20.01 / 2, rounded half up


def test_contact_without_purchases(desired):
    row = desired.values["3"]
    assert row["segsync_rfm_segment"] == "no_purchase"
    assert row["segsync_segment_since"] == AS_OF
    assert all(row[k] is None for k in RFM_KEYS if k not in ("segsync_rfm_segment", "segsync_segment_since"))
    assert all("3" not in members for members in desired.members.values())
    assert desired.segments["rfm"]["3"] == "no_purchase"


def test_members_and_segments(desired):
    assert desired.members["rfm.champions"] == {"1"}
    assert desired.members["lifecycle.vip"] == {"1"}
    assert desired.members["lifecycle.one_time_buyers"] == {"2", "5", "7"}
    assert desired.members["lifecycle.dormant"] == {"2"}
    assert set(desired.segments) == {"rfm"}  # independent sets have lists only
    assert set(desired.segments["rfm"]) == set(desired.values)
    assert desired.matched["lifecycle"]["vip"] == {"1"}
    for key, members in desired.members.items():
        set_key, _, segment = key.partition(".")
        assert members == desired.matched[set_key][segment]


def test_first_run_moves_everyone_into_the_set(desired):
    assert {c.contact_id for c in desired.changes} == set(desired.values)
    assert Movement("3", "rfm", None, "no_purchase") in desired.changes


def test_summary(desired):
    summary = desired.summary
    assert (summary.contacts, summary.customers) == (6, 5)
    assert summary.revenue == Decimal("2255.50")
    assert sum(summary.rfm_grid.values()) == summary.customers
    assert len(summary.rfm_grid) == 25
    rfm = summary.sets[0]
    assert rfm.key == "rfm"
    assert rfm.unmatched == 0
    assert sum(s.contacts for s in rfm.segments) == summary.contacts
    assert sum(s.revenue_share for s in rfm.segments) == pytest.approx(1.0)
    champions = summary.segment("rfm", "champions")
    assert champions.contacts == 1
    assert champions.revenue == Decimal("1600.00")
    assert champions.average_order == Decimal("200.00")
    assert champions.revenue_share == pytest.approx(1600 / 2255.5)
    assert summary.segment("rfm", "no_purchase").average_order is None
    with pytest.raises(KeyError):
        summary.segment("rfm", "nope")


def feed_back(desired: Desired, contacts=CONTACTS) -> list[Contact]:
    """The contacts as the CRM would return them after writing ``desired``."""
    return [c.model_copy(update={"managed": desired.values.get(c.id, {})}) for c in contacts]


def test_recompute_after_writing_changes_nothing(registry, desired):
    config = project('[segments]\npacks = ["rfm-standard", "lifecycle"]\n')
    again = run(config, registry, contacts=feed_back(desired))
    assert again.values == desired.values
    assert again.members == desired.members
    assert again.changes == ()


def test_history_moves_with_the_segment_and_stays_put_otherwise(registry, desired):
    config = project('[segments]\npacks = ["rfm-standard", "lifecycle"]\n')
    later = AS_OF + dt.timedelta(days=200)
    # Contact 2, hibernating, comes back with two orders; everyone else only ages.
    comeback = [buy("2-2", "2", "50.00", -199), buy("2-3", "2", "60.00", -195)]
    purchases = [*PURCHASES, *comeback]
    moved = run(config, registry, contacts=feed_back(desired), purchases=purchases, as_of=later)
    for cid, row in moved.values.items():
        before = desired.values[cid]
        if row["segsync_rfm_segment"] != before["segsync_rfm_segment"]:
            assert row["segsync_previous_segment"] == before["segsync_rfm_segment"]
            assert row["segsync_segment_since"] == later
            assert (
                Movement(cid, "rfm", before["segsync_rfm_segment"], row["segsync_rfm_segment"])
                in moved.changes
            )
        else:
            assert row["segsync_previous_segment"] == before["segsync_previous_segment"]
            assert row["segsync_segment_since"] == AS_OF
    assert moved.values["3"]["segsync_segment_since"] == AS_OF  # a prospect stays a prospect
    assert "2" in {c.contact_id for c in moved.changes}
    # And a re-run on that later day is idempotent again.
    settled = run(config, registry, contacts=feed_back(moved), purchases=purchases, as_of=later)
    assert settled.values == moved.values
    assert settled.changes == ()


def test_history_survives_as_strings_and_drops_unknown_segments(registry):
    config = project()
    managed = {
        "segsync_rfm_segment": "champions",
        "segsync_previous_segment": "retired_segment",
        "segsync_segment_since": "2025-01-15",
    }
    contact = Contact(id="1", email="a@example.com", managed=managed)
    purchases = [buy(f"p{i}", "1", "100", i) for i in range(5)] + [buy("q", "2", "1", 300)]
    other = Contact(id="2", email="b@example.com")
    row = run(config, registry, contacts=[contact, other], purchases=purchases).values["1"]
    assert row["segsync_rfm_segment"] == "champions"
    assert row["segsync_segment_since"] == dt.date(2025, 1, 15)
    assert row["segsync_previous_segment"] is None  # not an option of the enumeration any more


def test_recency_days_can_be_left_out(registry):
    desired = run(project("[rfm]\nwrite_recency_days = false\n"), registry)
    assert "segsync_recency_days" not in [f.key for f in desired.fields]
    assert all("segsync_recency_days" not in row for row in desired.values.values())


def test_compute_uses_the_date_its_caller_resolved(registry):
    # The CLI resolves --as-of > [rfm] as_of > today (segsync.project.app.as_of_date); compute obeys it.
    desired = run(project("[rfm]\nas_of = 2030-01-01\n"), registry, as_of=AS_OF)
    assert desired.as_of == AS_OF
    assert desired.values["1"]["segsync_recency_days"] == 2


def test_extra_exclusive_set_gets_its_own_field_and_dynamic_list_filter(registry):
    config = project(
        '[properties]\nplan = "string"\n'
        '[[segments.custom]]\nkey = "tier"\nlabel = "Tier"\nmode = "exclusive"\nallow_gaps = true\n'
        '[[segments.custom.segments]]\nkey = "gold"\nname = "Gold"\n'
        'when = { field = "revenue", op = "gte", value = 500 }\n'
        '[[segments.custom.segments]]\nkey = "pro"\nname = "Pro plan"\nlist = false\n'
        'when = { field = "plan", op = "eq", value = "pro" }\n'
    )
    contacts = [*CONTACTS, person("8", plan="pro"), person("9", plan=" pro ")]
    desired = run(config, registry, contacts=contacts)
    tier = next(f for f in desired.fields if f.key == "segsync_tier_segment")
    assert tier.type == "enumeration"
    assert [o.value for o in tier.options] == ["gold", "pro"]
    assert desired.segments["tier"]["1"] == "gold"
    assert desired.segments["tier"]["7"] == "gold"  # 500 >= 500
    assert desired.segments["tier"]["8"] == "pro"
    assert desired.segments["tier"]["9"] == "pro"  # CRM strings are trimmed
    assert desired.segments["tier"]["2"] is None
    assert desired.values["2"]["segsync_tier_segment"] is None
    assert desired.summary.sets[1].unmatched == 4
    gold = next(spec for spec in desired.lists if spec.key == "tier.gold")
    assert (gold.filter_field, gold.filter_value) == ("segsync_tier_segment", "gold")
    assert "tier.pro" not in desired.members
    assert required_properties(config, load_packs(config, registry), registry) == ("plan",)


def test_unreadable_property_values_match_nothing(registry):
    config = project(
        '[[segments.custom]]\nkey = "age"\nmode = "independent"\n'
        '[[segments.custom.segments]]\nkey = "adults"\nname = "Adults"\n'
        'when = { field = "age", op = "gte", value = 30 }\n'
        '[[segments.custom.segments]]\nkey = "unknown_age"\nname = "Age unknown"\n'
        'when = { field = "age", op = "exists", value = false }\n'
    )
    contacts = [person("1", age="42"), person("2", age="forty"), person("3", age=""), person("4")]
    desired = run(config, registry, contacts=contacts, purchases=[])
    assert desired.members["age.adults"] == {"1"}
    assert desired.members["age.unknown_age"] == {"3", "4"}  # "forty" is a value, just not a number


def test_email_property_falls_back_to_the_contact_email(registry):
    config = project(
        '[[segments.custom]]\nkey = "mail"\nmode = "independent"\n'
        '[[segments.custom.segments]]\nkey = "example"\nname = "Example.com"\n'
        'when = { field = "email", op = "eq", value = "c1@example.com" }\n'
    )
    desired = run(config, registry, contacts=[person("1"), person("2")], purchases=[])
    assert desired.members["mail.example"] == {"1"}


def test_input_order_does_not_change_the_result(registry, desired):
    config = project('[segments]\npacks = ["rfm-standard", "lifecycle"]\n')
    contacts = [c for c in CONTACTS if not (c.id == "1" and c is not CONTACTS[0])]
    purchases = list(PURCHASES)
    rng = random.Random(11)
    rng.shuffle(contacts)
    rng.shuffle(purchases)
    shuffled = run(config, registry, contacts=[CONTACTS[0], *contacts, CONTACTS[5]], purchases=purchases)
    assert shuffled.values == desired.values
    assert shuffled.members == desired.members


def test_spec_helpers_match_compute(registry, desired):
    config = project('[segments]\npacks = ["rfm-standard", "lifecycle"]\n')
    packs = load_packs(config, registry)
    assert desired_fields(config, packs) == desired.fields
    assert desired_lists(packs) == desired.lists
    assert required_properties(config, packs, registry) == ()


def test_without_an_rfm_set_scores_are_still_written(registry):
    desired = run(project('[segments]\npacks = ["lifecycle"]\n'), registry)
    keys = [f.key for f in desired.fields]
    assert "segsync_rfm_segment" not in keys
    assert "segsync_previous_segment" not in keys
    assert "segsync_rfm_r_score" in keys
    assert desired.changes == ()


def test_garbage_collector_state_is_restored(registry):
    assert gc.isenabled()
    run(project(), registry)
    assert gc.isenabled()
    gc.disable()
    try:
        run(project(), registry)
        assert not gc.isenabled()
    finally:
        gc.enable()
