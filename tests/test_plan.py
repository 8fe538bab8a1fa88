"""The planner: desired vs observed → ops. Pure, so every case is a table row or a small world."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.core.models import (
    FieldOption,
    FieldSpec,
    FieldValue,
    ListSpec,
    Rejection,
    RemoteField,
    RemoteList,
)
from segsync.core.plan import (
    FIELDS_TARGET,
    AddMembers,
    CreateFields,
    CreateList,
    FieldConflict,
    Observed,
    RemoveMembers,
    UpdateFieldOptions,
    WriteFields,
    human_duration,
    list_target,
    make_plan,
    min_duration,
    normalize,
    same_value,
)
from segsync.sync.runner import RateWindow

TIER = FieldSpec(
    key="segsync_tier",
    label="Tier",
    type="enumeration",
    options=(FieldOption(value="gold", label="Gold"), FieldOption(value="silver", label="Silver")),
)
REVENUE = FieldSpec(key="segsync_revenue", label="Revenue", type="number")
LAST = FieldSpec(key="segsync_last", label="Last purchase", type="date")
NOTE = FieldSpec(key="segsync_note", label="Note", type="string")
FIELDS = (TIER, REVENUE, LAST, NOTE)
GOLD = ListSpec(key="tier.gold", name="segsync · Gold", filter_field="segsync_tier", filter_value="gold")
SILVER = ListSpec(
    key="tier.silver", name="segsync · Silver", filter_field="segsync_tier", filter_value="silver"
)
LISTS = (GOLD, SILVER)
REMOTE = {
    "segsync_tier": RemoteField(name="SEGSYNC_TIER", type="category", options=("gold", "silver")),
    "segsync_revenue": RemoteField(name="SEGSYNC_REVENUE", type="float"),
    "segsync_last": RemoteField(name="SEGSYNC_LAST", type="date"),
    "segsync_note": RemoteField(name="SEGSYNC_NOTE", type="text"),
}
REMOTE_LISTS = {
    "tier.gold": RemoteList(id="7", name="segsync · Gold"),
    "tier.silver": RemoteList(id="8", name="x"),
}


@dataclass(frozen=True)
class Desired:
    values: dict[str, dict[str, FieldValue]]
    members: dict[str, frozenset[str]]
    fields: tuple[FieldSpec, ...] = FIELDS
    lists: tuple[ListSpec, ...] = LISTS
    changes: tuple[object, ...] = ()
    rejections: tuple[Rejection, ...] = ()


def row(tier: str | None = "gold", revenue: FieldValue = Decimal("12.50"), last: FieldValue = None) -> dict:
    return {"segsync_tier": tier, "segsync_revenue": revenue, "segsync_last": last, "segsync_note": None}


def desired(values: Mapping[str, dict], gold=(), silver=()) -> Desired:
    return Desired(dict(values), {"tier.gold": frozenset(gold), "tier.silver": frozenset(silver)})


def observed(values: Mapping[str, dict], gold=(), silver=(), **kw) -> Observed:
    args = {
        "fields": REMOTE,
        "lists": REMOTE_LISTS,
        "members": {"tier.gold": set(gold), "tier.silver": set(silver)},
    }
    args.update(kw)
    return Observed(values=dict(values), **args)


def test_first_sync_creates_everything_and_writes_only_non_empty_values():
    want = desired({"1": row(), "2": row("silver", 3, dt.date(2026, 1, 2))}, gold=["1"], silver=["2"])
    plan = make_plan(want, Observed(values={"1": {}, "2": {}}))
    assert plan.of_type(CreateFields) == [CreateFields(FIELDS)]
    assert plan.of_type(CreateList) == [CreateList(GOLD, False), CreateList(SILVER, False)]
    (write,) = plan.of_type(WriteFields)
    assert {u.contact_id: dict(u.values) for u in write.updates} == {
        "1": {"segsync_tier": "gold", "segsync_revenue": Decimal("12.50")},
        "2": {"segsync_tier": "silver", "segsync_revenue": 3, "segsync_last": dt.date(2026, 1, 2)},
    }
    assert plan.of_type(AddMembers) == [AddMembers("tier.gold", ("1",)), AddMembers("tier.silver", ("2",))]
    s = plan.summary
    assert (s.fields_to_create, s.lists_to_create, s.contacts_to_write) == (4, 2, 2)
    assert s.field_changes == {"segsync_tier": 2, "segsync_revenue": 2, "segsync_last": 1}
    assert s.list_adds == {"tier.gold": 1, "tier.silver": 1}


def test_nothing_changed_means_no_ops():
    values = {"1": row(), "2": row("silver")}
    plan = make_plan(desired(values, gold=["1"], silver=["2"]), observed(values, gold=["1"], silver=["2"]))
    assert plan.ops == ()
    assert not plan.writes_anything
    assert plan.describe() == ["nothing to write: the CRM is up to date"]


@pytest.mark.parametrize(
    ("spec", "want", "have"),
    [
        (REVENUE, Decimal("12.5"), Decimal("12.50")),
        (REVENUE, Decimal("12.50"), "12.5"),
        (REVENUE, 3, Decimal("3.00")),
        (LAST, dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 0, 0)),
        (LAST, dt.date(2026, 1, 2), "2026-01-02"),
        (NOTE, None, ""),
        (TIER, "gold", "gold"),
    ],
)
def test_equal_values_in_another_form_are_not_rewritten(spec, want, have):
    assert same_value(spec.type, want, have)
    plan = make_plan(desired({"1": {**row(), spec.key: want}}), observed({"1": {**row(), spec.key: have}}))
    assert not plan.of_type(WriteFields)


@pytest.mark.parametrize(
    ("spec", "want", "have"),
    [
        (REVENUE, Decimal("12.5"), Decimal("12.51")),
        (REVENUE, Decimal("1"), "not a number"),
        (LAST, dt.date(2026, 1, 2), dt.date(2026, 1, 3)),
        (NOTE, "x", None),
        (NOTE, None, "x"),
        (TIER, "gold", "silver"),
    ],
)
def test_changed_values_are_written_alone(spec, want, have):
    assert not same_value(spec.type, want, have)
    plan = make_plan(desired({"1": {**row(), spec.key: want}}), observed({"1": {**row(), spec.key: have}}))
    (write,) = plan.of_type(WriteFields)
    assert [dict(u.values) for u in write.updates] == [{spec.key: want}]


@pytest.mark.parametrize(
    ("field_type", "value", "canonical"),
    [
        ("number", "12.50", Decimal("12.5")),
        ("number", 7, Decimal(7)),
        ("number", "", None),
        ("date", dt.datetime(2026, 5, 1, 13, 0), dt.date(2026, 5, 1)),
        ("date", "2026-05-01T00:00:00Z", dt.date(2026, 5, 1)),
        ("string", 5, "5"),
        ("enumeration", "gold", "gold"),
    ],
)
def test_normalize(field_type, value, canonical):
    assert normalize(field_type, value) == canonical


def test_contacts_gone_from_the_crm_are_never_written_nor_added():
    want = desired({"1": row(), "2": row()}, gold=["1", "2"])
    plan = make_plan(want, observed({"1": {}}))
    (write,) = plan.of_type(WriteFields)
    assert [u.contact_id for u in write.updates] == ["1"]
    assert plan.of_type(AddMembers) == [AddMembers("tier.gold", ("1",))]


def test_members_are_diffed_and_only_live_contacts_removed():
    values = {str(i): row() for i in range(1, 6)}
    want = desired(values, gold=["1", "2", "3"])
    have = observed(values, gold=["2", "3", "4", "99"], silver=["5"])
    plan = make_plan(want, have)
    assert plan.of_type(RemoveMembers) == [
        RemoveMembers("tier.gold", ("4",)),
        RemoveMembers("tier.silver", ("5",)),
    ]
    assert plan.of_type(AddMembers) == [AddMembers("tier.gold", ("1",))]
    assert plan.summary.list_removes == {"tier.gold": 1, "tier.silver": 1}


def test_type_conflict_blocks_that_field_only():
    want = desired({"1": row("silver", Decimal(5))})
    have = observed(
        {"1": row("gold", Decimal(4))}, conflicts={"segsync_revenue": "SEGSYNC_REVENUE is a text field"}
    )
    plan = make_plan(want, have)
    (conflict,) = plan.of_type(FieldConflict)
    assert conflict.spec == REVENUE
    assert "CONFLICT field segsync_revenue" in str(conflict)
    (write,) = plan.of_type(WriteFields)
    assert [dict(u.values) for u in write.updates] == [{"segsync_tier": "silver"}]
    assert plan.summary.conflicts == ("segsync_revenue: SEGSYNC_REVENUE is a text field",)


def test_missing_enumeration_options_are_added_extra_ones_tolerated():
    grown = TIER.model_copy(update={"options": (*TIER.options, FieldOption(value="bronze", label="Bronze"))})
    want = Desired(
        {"1": row()},
        {"tier.gold": frozenset(), "tier.silver": frozenset()},
        fields=(grown, REVENUE, LAST, NOTE),
    )
    plan = make_plan(want, observed({"1": row()}))
    assert plan.of_type(UpdateFieldOptions) == [UpdateFieldOptions(grown, ("bronze",))]
    user_added = {
        **REMOTE,
        "segsync_tier": RemoteField(name="T", type="category", options=("gold", "silver", "x")),
    }
    assert not make_plan(desired({"1": row()}), observed({"1": row()}, fields=user_added)).ops


@pytest.mark.parametrize(
    ("dynamic_lists", "by_platform", "remote_dynamic", "creates", "member_ops"),
    [
        (False, False, None, [False, False], True),
        (True, False, None, [True, True], False),
        (True, True, None, [True, True], False),
        (False, True, None, [False, False], False),
        (False, False, True, [], False),
        (True, False, False, [], True),
    ],
)
def test_dynamic_lists_have_no_membership_ops(
    dynamic_lists, by_platform, remote_dynamic, creates, member_ops
):
    lists = (
        {}
        if remote_dynamic is None
        else {k: v.model_copy(update={"dynamic": remote_dynamic}) for k, v in REMOTE_LISTS.items()}
    )
    plan = make_plan(
        desired({"1": row()}, gold=["1"]),
        observed({"1": row()}, lists=lists),
        dynamic_lists=dynamic_lists,
        memberships_managed_by_platform=by_platform,
    )
    assert [op.dynamic for op in plan.of_type(CreateList)] == creates
    assert bool(plan.of_type(AddMembers)) == member_ops


def test_a_list_without_filter_is_manual_even_when_dynamic_lists_are_asked_for():
    plain = ListSpec(key="tier.gold", name="segsync · Gold")
    want = Desired({"1": row()}, {"tier.gold": frozenset({"1"})}, lists=(plain,))
    plan = make_plan(want, Observed(values={"1": row()}, fields=REMOTE), dynamic_lists=True)
    assert plan.of_type(CreateList) == [CreateList(plain, False)]
    assert plan.of_type(AddMembers) == [AddMembers("tier.gold", ("1",))]


def test_held_records_are_left_out_and_counted():
    want = desired({"1": row("silver"), "2": row("silver")}, silver=["1", "2"])
    held = {(FIELDS_TARGET, "1"), (list_target("tier.silver"), "2")}
    plan = make_plan(want, observed({"1": row(), "2": row()}), held=held)
    (write,) = plan.of_type(WriteFields)
    assert [u.contact_id for u in write.updates] == ["2"]
    assert plan.of_type(AddMembers) == [AddMembers("tier.silver", ("1",))]
    assert plan.summary.held_back == 2
    assert any("held back" in line for line in plan.describe())


def test_emails_travel_with_updates():
    plan = make_plan(desired({"1": row()}), observed({"1": {}}, emails={"1": "a@example.com"}))
    (write,) = plan.of_type(WriteFields)
    assert write.updates[0].email == "a@example.com"


def test_a_value_for_an_unmanaged_field_is_a_bug():
    with pytest.raises(ValueError, match="segsync_other"):
        make_plan(desired({"1": {"segsync_other": 1}}), observed({"1": {}}))


def brevo_like_cost(kind, n):
    if kind in ("write_fields", "add_members", "remove_members"):
        return {"contacts": -(-n // 100)}
    return {"other": n}


def test_plan_prices_calls_and_says_how_long_the_hourly_bucket_makes_it():
    values = {str(i): {} for i in range(1, 251)}
    want = Desired(
        {c: row() for c in values},
        {"tier.gold": frozenset(values), "tier.silver": frozenset()},
        fields=FIELDS,
        lists=tuple(ListSpec(key=f"l{i}", name=f"L{i}") for i in range(120)),
    )
    windows = {
        "contacts": [RateWindow(requests=10, seconds=1)],
        "other": [RateWindow(requests=100, seconds=3600)],
    }
    plan = make_plan(want, Observed(values=values), cost=brevo_like_cost, windows=windows, used={"other": 10})
    s = plan.summary
    assert s.calls == {"contacts": 3, "other": 124}
    assert s.min_seconds == 3600  # 10 used + 124 needed: the 101st call waits an hour
    assert s.bottleneck == "other"
    assert (
        plan.describe()[-1]
        == "API calls: contacts 3, other 124; takes at least 60 min (rate limit of the 'other' bucket)"
    )


@pytest.mark.parametrize(
    ("calls", "used", "seconds"),
    [(100, 0, 0), (101, 0, 3600), (250, 0, 7200), (1, 100, 3600), (0, 500, 0)],
)
def test_min_duration_of_an_hourly_bucket(calls, used, seconds):
    got, bucket = min_duration(
        {"other": calls}, {"other": [RateWindow(requests=100, seconds=3600)]}, {"other": used}
    )
    assert got == seconds
    assert bucket == ("other" if seconds else None)


def test_min_duration_takes_the_tightest_window_and_accepts_a_lookup():
    windows = [RateWindow(requests=10, seconds=1), RateWindow(requests=36000, seconds=3600)]
    assert min_duration({"c": 45}, lambda b: windows, {}) == (4.0, "c")


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "1 s"), (75, "75 s"), (600, "10 min"), (9000, "2.5 h")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_ops_print_for_humans():
    plan = make_plan(desired({"1": row()}, gold=["1"]), Observed(values={"1": {}}))
    text = "\n".join(plan.describe())
    assert "create 4 field(s): segsync_tier, segsync_revenue, segsync_last, segsync_note" in text
    assert "create manual list 'segsync · Gold'" in text
    assert "write 1 contact(s): segsync_revenue 1, segsync_tier 1" in text
    assert "list tier.gold: +1 -0" in text


def _field_values(places: int):
    """Values a field may hold, or a CRM hand back: numbers at ``places`` decimals among them."""
    return st.one_of(
        st.none(),
        st.text(max_size=4),
        st.integers(-5, 5),
        st.decimals(allow_nan=False, allow_infinity=False, places=places, min_value=-100, max_value=100),
        st.dates(),
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["string", "number", "date", "enumeration"]), _field_values(2), _field_values(1))
def test_the_plans_shortcut_never_calls_different_values_the_same(field_type, desired, observed):
    from segsync.core.plan import _plainly_same, same_value

    if _plainly_same(field_type, desired, observed):
        assert same_value(field_type, desired, observed)
