"""Rule operators, nesting, missing and unreadable values, CRM string coercion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from segsync.core.rules import (
    ALWAYS,
    DEFAULT_PROPERTIES,
    INVALID,
    AllOf,
    AnyOf,
    NotOf,
    RuleContext,
    bind,
    coerce,
    evaluate,
    parse_date,
    parse_rule,
    rule_fields,
)
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry

AS_OF = dt.date(2025, 6, 15)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture(scope="module")
def ctx(registry) -> RuleContext:
    properties = {**DEFAULT_PROPERTIES, "plan": "string", "renewal": "date", "seats": "number"}
    return RuleContext(registry, properties, "test.toml", {"min": 3})


def check(ctx: RuleContext, raw: dict[str, Any], values: dict[str, Any]) -> bool:
    return evaluate(parse_rule(raw, ctx, "when"), values, AS_OF)


def days_ago(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


# (field, op, value-in-the-manifest, field value, expected)
CASES = [
    ("order_count", "eq", 2, 2, True),
    ("order_count", "eq", 2, Decimal("2.0"), True),
    ("order_count", "eq", 2, 3, False),
    ("order_count", "neq", 2, 3, True),
    ("order_count", "neq", 2, 2, False),
    ("country", "eq", "FR", "FR", True),
    ("country", "eq", "FR", "fr", False),  # exact: CRM enumerations are case-sensitive
    ("country", "in", ["FR", "DE"], "DE", True),
    ("country", "in", ["FR", "DE"], "US", False),
    ("order_count", "in", [1, 2], 2, True),
    ("revenue", "gt", 100, Decimal("100.01"), True),
    ("revenue", "gt", 100, Decimal("100"), False),
    ("revenue", "gte", 100, Decimal("100"), True),
    ("revenue", "gte", 100.5, Decimal("100.49"), False),
    ("revenue", "lt", 100, Decimal("99.99"), True),
    ("revenue", "lt", 100, Decimal("100"), False),
    ("revenue", "lte", 100, Decimal("100"), True),
    ("revenue", "lte", 100, Decimal("100.01"), False),
    ("rfm_r", "between", [3, 4], 3, True),
    ("rfm_r", "between", [3, 4], 4, True),
    ("rfm_r", "between", [3, 4], 5, False),
    ("rfm_r", "between", [3, 4], 2, False),
    ("last_purchase", "gt", "2025-01-01", dt.date(2025, 1, 2), True),
    ("last_purchase", "gt", dt.date(2025, 1, 1), dt.date(2025, 1, 1), False),
    ("last_purchase", "between", ["2025-01-01", "2025-01-31"], dt.date(2025, 1, 31), True),
    ("last_purchase", "within_last_days", 30, days_ago(30), True),
    ("last_purchase", "within_last_days", 30, days_ago(31), False),
    ("last_purchase", "within_last_days", 30, AS_OF, True),
    ("last_purchase", "within_last_days", 30, AS_OF + dt.timedelta(days=1), False),
    ("last_purchase", "within_last_days", 0, AS_OF, True),
    ("last_purchase", "older_than_days", 180, days_ago(181), True),
    ("last_purchase", "older_than_days", 180, days_ago(180), False),
    ("last_purchase", "older_than_days", 180, AS_OF, False),
    ("has_purchased", "eq", False, False, True),
    ("has_purchased", "eq", False, True, False),
    ("has_purchased", "neq", True, False, True),
    ("order_count", "gte", "$min", 3, True),
    ("order_count", "gte", "$min", 2, False),
]


@pytest.mark.parametrize(("field", "op", "arg", "value", "expected"), CASES)
def test_operator(ctx, field, op, arg, value, expected):
    assert check(ctx, {"field": field, "op": op, "value": arg}, {field: value}) is expected


@pytest.mark.parametrize("op", ["eq", "neq", "gt", "gte", "lt", "lte"])
def test_none_satisfies_no_comparison(ctx, op):
    assert check(ctx, {"field": "revenue", "op": op, "value": 1}, {"revenue": None}) is False
    assert check(ctx, {"field": "revenue", "op": op, "value": 1}, {}) is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"op": "in", "value": ["a"]}, False), ({"op": "between", "value": [1, 2]}, False)],
)
def test_none_satisfies_no_list_operator(ctx, raw, expected):
    field = "country" if raw["op"] == "in" else "age"
    assert check(ctx, {"field": field, **raw}, {field: None}) is expected


@pytest.mark.parametrize(
    ("value", "present", "absent"),
    [(None, True, False), (True, True, False), (False, False, True)],
)
def test_exists(ctx, value, present, absent):
    raw: dict[str, Any] = {"field": "email", "op": "exists"}
    if value is not None:
        raw["value"] = value
    assert check(ctx, raw, {"email": "a@b.c"}) is present
    assert check(ctx, raw, {"email": None}) is absent
    assert check(ctx, raw, {}) is absent


@pytest.mark.parametrize("op", ["eq", "neq", "gt", "exists"])
def test_unreadable_values_satisfy_nothing(ctx, op):
    raw: dict[str, Any] = {"field": "age", "op": op}
    if op != "exists":
        raw["value"] = 30
    assert check(ctx, raw, {"age": INVALID}) is False
    assert check(ctx, {"field": "age", "op": "exists", "value": False}, {"age": INVALID}) is False


def test_not_of_an_unreadable_value_is_true(ctx):
    # `not` is plain negation: "not (age > 30)" holds for a garbled age, which is why packs
    # should prefer positive conditions on CRM properties.
    assert check(ctx, {"not": {"field": "age", "op": "gt", "value": 30}}, {"age": INVALID}) is True


def test_nesting(ctx):
    raw = {
        "all": [
            {"field": "rfm_r", "op": "gte", "value": 4},
            {
                "any": [
                    {"field": "country", "op": "eq", "value": "FR"},
                    {"not": {"field": "age", "op": "lt", "value": 30}},
                ]
            },
        ]
    }
    rule = parse_rule(raw, ctx, "when")
    assert rule_fields(rule) == {"rfm_r", "country", "age"}
    assert isinstance(rule, AllOf)
    assert isinstance(rule.children[1], AnyOf)
    assert isinstance(rule.children[1].children[1], NotOf)
    test = bind(rule, AS_OF)
    assert test({"rfm_r": 5, "country": "FR", "age": Decimal(20)})
    assert test({"rfm_r": 5, "country": "DE", "age": Decimal(40)})
    assert not test({"rfm_r": 5, "country": "DE", "age": Decimal(20)})
    assert not test({"rfm_r": 3, "country": "FR", "age": Decimal(40)})


def test_empty_combinators(ctx):
    assert check(ctx, {"all": []}, {}) is True
    assert check(ctx, {"any": []}, {}) is False
    assert evaluate(ALWAYS, {}, AS_OF) is True


def test_plugin_operator_gets_typed_values(registry):
    # An operator registered without types applies to any field and sees converted values.
    from segsync.plugins.registry import OperatorRegister

    custom = Registry(features=registry.features, operators=dict(registry.operators))
    OperatorRegister(custom, "test-plugin")("divisible_by", lambda v, arg, as_of: v % arg == 0)
    ctx = RuleContext(custom, DEFAULT_PROPERTIES, "t.toml")
    rule = parse_rule({"field": "order_count", "op": "divisible_by", "value": 3}, ctx, "when")
    assert evaluate(rule, {"order_count": 6}, AS_OF)
    assert not evaluate(rule, {"order_count": None}, AS_OF)


# -- coercion of CRM strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ptype", "expected"),
    [
        (None, "number", None),
        ("", "number", None),
        ("  ", "string", None),
        ("42", "number", Decimal(42)),
        (" 42.50 ", "number", Decimal("42.50")),
        ("-3", "number", Decimal(-3)),
        ("1e3", "number", Decimal(1000)),
        ("forty", "number", INVALID),
        ("1,234", "number", INVALID),
        ("NaN", "number", INVALID),
        ("Infinity", "number", INVALID),
        (" Paris ", "string", "Paris"),
        ("2024-01-31", "date", dt.date(2024, 1, 31)),
        ("2024-01-31T23:30:00Z", "date", dt.date(2024, 1, 31)),
        ("2024-01-31T23:30:00+02:00", "date", dt.date(2024, 1, 31)),
        ("2024-01-31 08:00:00", "date", dt.date(2024, 1, 31)),
        ("1706659200000", "date", dt.date(2024, 1, 31)),  # HubSpot: midnight UTC in epoch ms
        ("31/01/2024", "date", INVALID),
        ("99999999999999999999999", "date", INVALID),
        ("soon", "date", INVALID),
    ],
)
def test_coerce(raw, ptype, expected):
    assert coerce(raw, ptype) == expected if expected is not INVALID else coerce(raw, ptype) is INVALID


def test_parse_date_without_epoch():
    assert parse_date("1706659200000", epoch_ms=False) is None
    assert parse_date("2024-02-30") is None


def test_declared_property_types_drive_conditions(ctx):
    rule = parse_rule({"field": "seats", "op": "gte", "value": 10}, ctx, "when")
    assert evaluate(rule, {"seats": coerce("12", "number")}, AS_OF)
    assert not evaluate(rule, {"seats": coerce("twelve", "number")}, AS_OF)
    renewal = parse_rule({"field": "renewal", "op": "within_last_days", "value": 7}, ctx, "when")
    assert evaluate(
        renewal,
        {"renewal": coerce(str(int(dt.datetime(2025, 6, 10, tzinfo=dt.UTC).timestamp() * 1000)), "date")},
        AS_OF,
    )
