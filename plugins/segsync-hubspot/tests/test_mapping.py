"""Pure conversions between HubSpot JSON and segsync models, on small JSON fixtures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segsync import (
    FieldOption,
    FieldSpec,
    FieldValue,
    ListSpec,
    Purchase,
    RecordFailure,
    Rejection,
    RemoteField,
)
from segsync_hubspot import mapping

UTC = dt.UTC
NUMBER = FieldSpec(key="segsync_revenue", label="Revenue", type="number")
DATE = FieldSpec(key="segsync_last_purchase", label="Last purchase", type="date")
TEXT = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
CHOICE = FieldSpec(
    key="segsync_rfm_segment",
    label="Segment",
    type="enumeration",
    options=(FieldOption(value="champions", label="Champions"), FieldOption(value="lost", label="Lost")),
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (Decimal("120.50"), "120.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.10"), "-0.1"),
        (7, "7"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        ("545", "545"),
        ("Champions · café", "Champions · café"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert mapping.format_value(value) == text  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "raw", "value"),
    [
        (NUMBER, "120.5", Decimal("120.5")),
        (NUMBER, "3", 3),
        (NUMBER, "3.0", 3),
        (NUMBER, "", None),
        (NUMBER, None, None),
        (NUMBER, "abc", "abc"),  # a hand-edited value stays visible, so the planner rewrites it
        (DATE, "2024-02-29", dt.date(2024, 2, 29)),
        (DATE, "1709164800000", dt.date(2024, 2, 29)),
        (DATE, "2024-02-29T00:00:00.000Z", dt.date(2024, 2, 29)),
        (DATE, "soon", "soon"),
        (TEXT, "545", "545"),
        (CHOICE, "lost", "lost"),
    ],
)
def test_parse_value(spec: FieldSpec, raw: str | None, value: object) -> None:
    assert mapping.parse_value(spec, raw) == value


def test_values_round_trip_through_hubspot_strings() -> None:
    cases: list[tuple[FieldSpec, FieldValue]] = [
        (NUMBER, Decimal("12.50")),
        (NUMBER, 3),
        (DATE, dt.date(2025, 12, 31)),
        (TEXT, "x"),
    ]
    for spec, value in cases:
        assert mapping.parse_value(spec, mapping.format_value(value)) == value


def test_contact_passes_missing_email_and_parses_managed_values() -> None:
    record = {
        "id": "512",
        "properties": {
            "firstname": "Ada",
            "email": "",
            "segsync_revenue": "99.5",
            "segsync_rfm_segment": "lost",
        },
        "archived": False,
    }
    got = mapping.contact_from_record(record, ["firstname", "country"], [NUMBER, CHOICE, DATE])
    assert got.id == "512"
    assert got.email is None
    assert dict(got.properties) == {"firstname": "Ada", "country": None}
    assert dict(got.managed) == {
        "segsync_revenue": Decimal("99.5"),
        "segsync_rfm_segment": "lost",
        DATE.key: None,
    }


PIPELINES = [
    {
        "id": "default",
        "archived": False,
        "stages": [
            {"id": "closedwon", "archived": False, "metadata": {"isClosed": "true", "probability": "1.0"}},
            {"id": "closedlost", "archived": False, "metadata": {"isClosed": "true", "probability": "0.0"}},
            {
                "id": "contractsent",
                "archived": False,
                "metadata": {"isClosed": "false", "probability": "0.9"},
            },
            {"id": "oldwon", "archived": True, "metadata": {"isClosed": "true", "probability": "1.0"}},
        ],
    },
    {
        "id": "renewals",
        "archived": False,
        "stages": [{"id": "1002", "archived": False, "metadata": {"isClosed": "true", "probability": "1"}}],
    },
]


@pytest.mark.parametrize(
    ("only", "won"),
    [((), {"closedwon", "1002"}), (("renewals",), {"1002"}), (("nope",), set())],
)
def test_won_stages_come_from_stage_metadata(only: tuple[str, ...], won: set[str]) -> None:
    assert mapping.won_stage_ids(PIPELINES, only) == won


def _deal(**props: str) -> dict[str, object]:
    base = {"closedate": "2025-12-01T12:00:00.000Z", "hs_lastmodifieddate": "2025-12-02T08:00:00.000Z"}
    return {"id": "77", "properties": {**base, **props}}


CLOSED = dt.datetime(2025, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("props", "contacts", "expected"),
    [
        ({"amount": "120.50", "deal_currency_code": "EUR"}, ["1"], [("1", Decimal("120.50"), "EUR")]),
        (
            {"amount": "100", "amount_in_home_currency": "110.25", "deal_currency_code": "EUR"},
            ["1"],
            [("1", Decimal("110.25"), "USD")],
        ),
        ({"amount": "5"}, ["1", "2", "1"], [("1", Decimal(5), "USD"), ("2", Decimal(5), "USD")]),
        ({"amount": ""}, ["1"], "won deal has no amount"),
        ({}, ["1"], "won deal has no amount"),
        ({"amount": "call me"}, ["1"], "won deal amount 'call me' is not a number"),
        ({"amount": "NaN"}, ["1"], "won deal amount 'NaN' is not a number"),
        ({"amount": "10", "closedate": ""}, ["1"], "won deal has no close date (closedate)"),
        (
            {"amount": "10", "closedate": "someday"},
            ["1"],
            "won deal close date (closedate) 'someday' is unreadable "
            "(expected an ISO 8601 date-time or epoch milliseconds)",
        ),
        ({"amount": "10"}, [], "won deal has no associated contact"),
    ],
)
def test_deal_purchases(props: dict[str, str], contacts: list[str], expected: object) -> None:
    got = mapping.deal_purchases(_deal(**props), contacts, "USD")
    if isinstance(expected, str):
        assert got == Rejection(kind="purchase", record_id="77", reason=expected)
        return
    assert isinstance(got, list)
    assert all(isinstance(p, Purchase) and p.id == "77" and p.closed_at == CLOSED for p in got)
    assert [(p.contact_id, p.amount, p.currency) for p in got] == expected
    assert got[0].modified_at == dt.datetime(2025, 12, 2, 8, tzinfo=UTC)


def test_rejection_reasons_never_quote_crm_values() -> None:
    got = mapping.deal_purchases(_deal(amount="secret-note@example.com"), ["1"], None)
    assert isinstance(got, Rejection)
    assert "example.com" not in got.reason


@pytest.mark.parametrize(
    ("raw", "when"),
    [
        ("2025-12-01T12:00:00.000Z", CLOSED),
        ("2025-12-01T12:00:00Z", CLOSED),
        ("2025-12-01", dt.datetime(2025, 12, 1, tzinfo=UTC)),
        ("1764590400000", CLOSED),
        ("", None),
        (None, None),
        ("tomorrow", None),
    ],
)
def test_parse_datetime(raw: str | None, when: dt.datetime | None) -> None:
    assert mapping.parse_datetime(raw) == when


def test_property_body_pairs_types_and_options() -> None:
    assert mapping.property_body(NUMBER, "segsync") == {
        "name": "segsync_revenue",
        "label": "Revenue",
        "type": "number",
        "fieldType": "number",
        "groupName": "segsync",
        "description": "",
    }
    body = mapping.property_body(CHOICE, "segsync")
    assert (body["type"], body["fieldType"]) == ("enumeration", "select")
    assert body["options"] == [
        {"label": "Champions", "value": "champions", "hidden": False, "displayOrder": 0},
        {"label": "Lost", "value": "lost", "hidden": False, "displayOrder": 1},
    ]


@pytest.mark.parametrize(
    ("spec", "remote_type", "conflict"),
    [
        (NUMBER, "number", False),
        (NUMBER, "string", True),
        (DATE, "datetime", True),
        (CHOICE, "enumeration", False),
    ],
)
def test_field_conflicts_compare_types(spec: FieldSpec, remote_type: str, conflict: bool) -> None:
    reason = mapping.field_conflict(spec, RemoteField(name=spec.key, type=remote_type))
    assert bool(reason) is conflict
    if reason:
        assert spec.key in reason
        assert remote_type in reason


def test_dynamic_list_filters_on_the_segment_property() -> None:
    spec = ListSpec(
        key="lost", name="segsync · Lost", filter_field="segsync_rfm_segment", filter_value="lost"
    )
    body = mapping.list_body(spec, dynamic=True)
    assert body["processingType"] == "DYNAMIC"
    root = body["filterBranch"]
    assert root["filterBranchType"] == "OR"
    (branch,) = root["filterBranches"]
    assert branch["filterBranchType"] == "AND"
    (flt,) = branch["filters"]
    assert flt["property"] == "segsync_rfm_segment"
    assert flt["operation"]["operator"] == "IS_ANY_OF"
    assert flt["operation"]["values"] == ["lost"]
    assert "filterBranch" not in mapping.list_body(spec, dynamic=False)
    with pytest.raises(ValueError, match="cannot be DYNAMIC"):
        mapping.list_body(ListSpec(key="x", name="x"), dynamic=True)


def test_membership_result_missing_ids_fail_adds_but_satisfy_removes() -> None:
    added = mapping.membership_result(["1", "2"], ["2"], adding=True)
    assert added.ok == ("1",)
    assert [f.record_id for f in added.failed] == ["2"]
    assert mapping.membership_result(["1", "2"], ["2"], adding=False).ok == ("1", "2")


@pytest.mark.parametrize(
    ("response", "ok", "failed"),
    [
        ({"results": [{"id": "1"}, {"id": "2"}]}, ("1", "2"), ()),
        (
            {
                "results": [{"id": "1"}],
                "errors": [
                    {
                        "category": "VALIDATION_ERROR",
                        "message": "value 'bob@example.com' invalid",
                        "context": {"ids": ["2"], "propertyName": ["segsync_revenue"]},
                        "errors": [{"message": "x", "code": "INVALID_DECIMAL"}],
                    }
                ],
            },
            ("1",),
            (RecordFailure(record_id="2", reason="VALIDATION_ERROR (INVALID_DECIMAL) on segsync_revenue"),),
        ),
        (
            {"results": [{"id": "1"}], "errors": [{"category": "OBJECT_NOT_FOUND", "id": "2"}]},
            ("1",),
            (RecordFailure(record_id="2", reason="OBJECT_NOT_FOUND"),),
        ),
        (
            {"results": [], "errors": [{"category": "VALIDATION_ERROR"}]},
            (),
            (
                RecordFailure(record_id="1", reason="VALIDATION_ERROR"),
                RecordFailure(record_id="2", reason="VALIDATION_ERROR"),
            ),
        ),
        (
            {"results": [{"id": "1"}]},
            ("1",),
            (RecordFailure(record_id="2", reason="HubSpot returned no result for this record"),),
        ),
    ],
)
def test_batch_result(
    response: dict[str, object], ok: tuple[str, ...], failed: tuple[RecordFailure, ...]
) -> None:
    got = mapping.batch_result(["1", "2"], response)
    assert got.ok == ok
    assert got.failed == failed
    assert all("example.com" not in f.reason for f in got.failed)
