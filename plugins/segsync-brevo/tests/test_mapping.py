"""Pure converters: names, attribute shapes, enumerations, values, contacts, deals, orders, paging."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segsync import (
    FieldOption,
    FieldSpec,
    Purchase,
    PurchaseRetracted,
    Rejection,
    RemoteField,
    TransientError,
)
from segsync_brevo import mapping
from segsync_brevo.client import PageCursor, offset_pages
from segsync_brevo.config import CONTACTS, OTHER, BrevoSettings, bucket_for_path

SEGMENT = FieldSpec(
    key="segsync_rfm_segment",
    label="Segment",
    type="enumeration",
    options=(
        FieldOption(value="champions", label="Champions"),
        FieldOption(value="at_risk", label="At risk"),
    ),
)
UTC = dt.UTC


@pytest.mark.parametrize(
    ("key", "name"),
    [("segsync_rfm_segment", "SEGSYNC_RFM_SEGMENT"), ("segsync_rfm_r_score", "SEGSYNC_RFM_R_SCORE")],
)
def test_attribute_names_are_upper_case(key, name):
    assert mapping.attribute_name(key) == name


@pytest.mark.parametrize("key", ["1st", "with-dash", "sp ace", ""])
def test_impossible_attribute_names_are_refused(key):
    with pytest.raises(ValueError, match="cannot be a Brevo attribute name"):
        mapping.attribute_name(key)


@pytest.mark.parametrize(
    ("neutral", "overrides", "name"),
    [
        ("firstname", {}, "FIRSTNAME"),
        ("jobtitle", {}, "JOB_TITLE"),
        ("jobtitle", {"jobtitle": "JOB"}, "JOB"),
        ("loyalty_tier", {}, "LOYALTY_TIER"),
    ],
)
def test_neutral_properties_map_to_attributes(neutral, overrides, name):
    assert mapping.property_attribute(neutral, overrides) == name


@pytest.mark.parametrize(
    ("spec_type", "attr", "conflict"),
    [
        ("string", {"name": "X", "category": "normal", "type": "text"}, False),
        ("number", {"name": "X", "category": "normal", "type": "float"}, False),
        ("date", {"name": "X", "category": "normal", "type": "date"}, False),
        ("enumeration", {"name": "X", "category": "category", "type": "text", "enumeration": []}, False),
        ("number", {"name": "X", "category": "normal", "type": "text"}, True),
        ("string", {"name": "X", "category": "category", "type": "text", "enumeration": []}, True),
        ("enumeration", {"name": "X", "category": "normal", "type": "text"}, True),
        ("date", {"name": "X", "category": "transactional", "type": "date"}, True),
        ("string", {"name": "X", "category": "calculated"}, True),
    ],
)
def test_existing_attributes_of_another_shape_conflict(spec_type, attr, conflict):
    spec = FieldSpec(key="x", label="X", type=spec_type)
    reason = mapping.field_mismatch(spec, mapping.remote_field(attr))
    assert bool(reason) is conflict
    if conflict:
        assert "Delete or rename it in Brevo" in str(reason)


def test_remote_field_lists_option_values_where_labels_match():
    attr = {
        "name": "SEGSYNC_RFM_SEGMENT",
        "category": "category",
        "type": "text",
        "enumeration": [{"value": 1, "label": "Champions"}, {"value": 2, "label": "Somebody else's"}],
    }
    assert mapping.remote_field(attr, SEGMENT) == RemoteField(
        name="SEGSYNC_RFM_SEGMENT",
        type="category",
        options=("champions", "Somebody else's"),
        group="category",
    )


def test_new_options_get_fresh_codes_and_existing_ones_keep_theirs():
    grown = SEGMENT.model_copy(
        update={"options": (*SEGMENT.options, FieldOption(value="lost", label="Lost"))}
    )
    # code 3 once belonged to an option that was removed: it must not be reused
    existing = [
        {"value": 2, "label": "At risk"},
        {"value": 1, "label": "Champions"},
        {"value": 3, "label": "Old"},
    ]
    assert mapping.plan_enumeration(grown, existing) == [
        {"value": 1, "label": "Champions"},
        {"value": 2, "label": "At risk"},
        {"value": 4, "label": "Lost"},
    ]
    assert mapping.plan_enumeration(SEGMENT, []) == [
        {"value": 1, "label": "Champions"},
        {"value": 2, "label": "At risk"},
    ]


def test_option_codes_match_labels_case_insensitively_and_by_value():
    enumeration = [{"value": 7, "label": "CHAMPIONS"}, {"value": 9, "label": "at_risk"}]
    assert mapping.option_codes(SEGMENT.options, enumeration) == {"champions": 7, "at_risk": 9}
    assert mapping.codes_from_labels([{"value": 4, "label": "At risk"}]) == {"at_risk": 4}


@pytest.mark.parametrize(
    ("kind", "value", "wire"),
    [
        ("float", Decimal("12.50"), 12.5),
        ("float", 3, 3),
        ("date", dt.date(2024, 2, 29), "2024-02-29"),
        ("date", "2024-02-29", "2024-02-29"),
        ("text", "545", "545"),
        ("text", Decimal("1.5"), "1.5"),
        ("category", "at_risk", 2),
        ("float", None, ""),
        ("category", None, ""),
    ],
)
def test_values_encode_as_brevo_stores_them_and_decode_back(kind, value, wire):
    codes = {"champions": 1, "at_risk": 2}
    assert mapping.encode_value(kind, value, codes) == wire
    back = mapping.decode_value(kind, wire, {v: k for k, v in codes.items()})
    if value is None:
        assert back is None
    elif kind == "date":
        assert back == dt.date(2024, 2, 29)
    elif kind == "text":
        assert back == str(value)
    else:
        assert mapping.same_value(value, back) if kind == "float" else back == value


@pytest.mark.parametrize(
    ("kind", "value"),
    [("category", "nobody"), ("float", "12"), ("float", True), ("date", "29/02/2024"), ("boolean", "x")],
)
def test_values_brevo_would_silently_drop_are_refused_before_sending(kind, value):
    with pytest.raises(ValueError):
        mapping.encode_value(kind, value, {"champions": 1})


@pytest.mark.parametrize(
    ("kind", "raw", "parsed"),
    [
        ("float", 12.5, Decimal("12.5")),
        ("float", "oops", None),
        ("float", True, None),
        ("date", "2024-02-29T00:00:00Z", dt.date(2024, 2, 29)),
        ("date", "yesterday", None),
        ("category", 1, "champions"),
        ("category", "1", "champions"),
        ("category", 99, None),
        ("category", "champions", "champions"),
        ("text", 5, "5"),
        ("text", "", None),
    ],
)
def test_stored_values_parse_or_come_back_as_none(kind, raw, parsed):
    assert mapping.decode_value(kind, raw, {1: "champions"}) == parsed


def test_same_value_tolerates_float_round_trips_only():
    assert mapping.same_value(Decimal("0.1") + Decimal("0.2"), Decimal(str(0.1 + 0.2)))
    assert not mapping.same_value(Decimal("10.00"), Decimal("10.01"))
    assert mapping.same_value("a", "a")
    assert not mapping.same_value(dt.date(2024, 1, 1), dt.date(2024, 1, 2))


def test_contact_from_brevo_reads_properties_managed_values_and_lists():
    raw = {
        "id": 42,
        "email": "ada+shop@example.com",
        "createdAt": "2024-03-01T09:00:00.000Z",
        "modifiedAt": "2024-03-02T09:00:00.000Z",
        "listIds": [7, 9, 11],
        "attributes": {
            "FIRSTNAME": "Ada",
            "AGE": 36.0,
            "JOB_TITLE": "Engineer",
            "SEGSYNC_RFM_SEGMENT": 2,
            "SEGSYNC_REVENUE": 123.45,
        },
    }
    contact = mapping.contact_from_brevo(
        raw,
        properties=["email", "firstname", "age", "jobtitle", "country", "createdate"],
        managed=[
            ("segsync_rfm_segment", "SEGSYNC_RFM_SEGMENT", "category", {2: "at_risk"}),
            ("segsync_revenue", "SEGSYNC_REVENUE", "float", {}),
            ("segsync_since", "SEGSYNC_SINCE", "date", {}),
        ],
        list_keys={7: "champions", 11: "at_risk"},
        overrides={},
    )
    assert contact.id == "42"
    assert contact.email == "ada+shop@example.com"
    assert contact.properties == {
        "email": "ada+shop@example.com",
        "firstname": "Ada",
        "age": "36",
        "jobtitle": "Engineer",
        "country": None,
        "createdate": "2024-03-01T09:00:00.000Z",
    }
    assert contact.managed == {
        "segsync_rfm_segment": "at_risk",
        "segsync_revenue": Decimal("123.45"),
        "segsync_since": None,
    }
    assert contact.lists == frozenset({"champions", "at_risk"})


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2022-05-30T07:42:05.671Z", dt.datetime(2022, 5, 30, 7, 42, 5, 671000, tzinfo=UTC)),
        ("2017-05-12 12:30:00+02:00", dt.datetime(2017, 5, 12, 10, 30, tzinfo=UTC)),
        ("2024-01-05", dt.datetime(2024, 1, 5, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_brevo_timestamps_parse_to_utc(text, parsed):
    assert mapping.parse_datetime(text) == parsed


def test_since_is_formatted_the_way_brevo_filters_take_it():
    moment = dt.datetime(2026, 1, 15, 10, 30, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert mapping.format_since(moment) == "2026-01-15T08:30:05.123Z"


PIPELINES = [
    {
        "pipeline": "p1",
        "pipeline_name": "Sales",
        "stages": [
            {"id": "s-new", "name": "New"},
            {"id": "s-won", "name": "Won"},
            {"id": "s-lost", "name": "Lost"},
        ],
    },
    {"pipeline": "p2", "pipeline_name": "Renewals", "stages": [{"id": "r-done", "name": "Renewed"}]},
]


def test_won_stages_are_found_by_name_or_id():
    assert mapping.won_stage_ids(PIPELINES, ["won"]) == {"s-won": "Sales / Won"}
    assert mapping.won_stage_ids(PIPELINES, ["Won", "r-done"]) == {
        "s-won": "Sales / Won",
        "r-done": "Renewals / Renewed",
    }
    assert mapping.won_stage_ids(PIPELINES, ["Closed won"]) == {}


@pytest.mark.parametrize(
    ("catalogue", "configured", "found"),
    [
        ([{"internalName": "close_date", "attributeTypeName": "date"}], None, "close_date"),
        (
            [{"internalName": "closing", "label": "Closing date", "attributeTypeName": "date"}],
            None,
            "closing",
        ),
        ([{"internalName": "amount", "attributeTypeName": "number"}], None, "stage_updated_at"),
        ([{"internalName": "close_date"}], "won_on", "won_on"),
    ],
)
def test_close_date_attribute_comes_from_the_catalogue(catalogue, configured, found):
    assert mapping.close_date_attribute(catalogue, configured) == found


def _deal(stage="s-won", **attrs):
    base = {
        "amount": 120.5,
        "close_date": "2026-01-10T12:00:00.000Z",
        "last_updated_date": "2026-01-11T08:00:00.000Z",
    }
    return {"id": "d1", "attributes": {"deal_stage": stage, **base, **attrs}, "linkedContactsIds": [5, 6, 5]}


def _deal_records(deal, incremental=False):
    return mapping.deal_records(
        deal,
        won_stages={"s-won": "Sales / Won"},
        amount_attribute="amount",
        close_attribute="close_date",
        currency="USD",
        incremental=incremental,
        currency_attribute="deal_currency",
    )


def test_a_won_deal_is_one_purchase_per_linked_contact():
    records = _deal_records(_deal())
    assert records == [
        Purchase(
            id="d1",
            contact_id=c,
            amount=Decimal("120.5"),
            currency="USD",
            closed_at=dt.datetime(2026, 1, 10, 12, tzinfo=UTC),
            modified_at=dt.datetime(2026, 1, 11, 8, tzinfo=UTC),
        )
        for c in ("5", "6")
    ]
    assert _deal_records(_deal(deal_currency="eur"))[0].currency == "EUR"


@pytest.mark.parametrize(
    ("deal", "reason"),
    [
        (_deal(amount=None), "has no amount"),
        (_deal(amount="call me"), "is not a number"),
        (_deal(amount="NaN"), "is not a number"),
        (_deal(close_date=None), "has no close date (close_date)"),
        ({**_deal(), "linkedContactsIds": []}, "linked to no contact"),
    ],
)
def test_broken_won_deals_are_rejected_with_a_reason(deal, reason):
    (record,) = _deal_records(deal)
    assert isinstance(record, Rejection)
    assert record.kind == "purchase"
    assert record.record_id == "d1"
    assert reason in record.reason


def test_deals_not_won_are_skipped_or_retracted_when_incremental():
    assert _deal_records(_deal(stage="s-lost")) == []
    assert _deal_records(_deal(stage="s-lost"), incremental=True) == [PurchaseRetracted(id="d1")]


def test_orders_become_purchases_when_their_status_counts():
    order = {"id": "o1", "status": "Completed", "amount": 30, "createdAt": "2026-01-02T10:00:00Z"}
    (p,) = mapping.order_records(
        order, contact_id="9", statuses=("completed",), currency="EUR", incremental=False
    )
    assert (p.id, p.contact_id, p.amount, p.currency) == ("o1", "9", Decimal(30), "EUR")
    cancelled = {**order, "status": "cancelled"}
    assert mapping.order_records(
        cancelled, contact_id="9", statuses=("completed",), currency=None, incremental=True
    ) == [PurchaseRetracted(id="o1")]
    (orphan,) = mapping.order_records(
        order, contact_id=None, statuses=("completed",), currency=None, incremental=False
    )
    assert isinstance(orphan, Rejection)
    assert "no known contact" in orphan.reason


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("/v3/contacts", CONTACTS),
        ("/v3/contacts/lists/4/contacts/add", CONTACTS),
        ("/contacts/import", CONTACTS),
        ("/v3/contactsX", OTHER),
        ("/v3/crm/deals", OTHER),
        ("/v3/processes/5", OTHER),
        ("/v3/orders", OTHER),
    ],
)
def test_paths_fall_in_brevos_rate_buckets(path, bucket):
    assert bucket_for_path(path) == bucket


def test_settings_rate_windows_follow_the_tier_and_overrides():
    general = BrevoSettings().rate_windows()
    assert [(w.requests, w.seconds) for w in general[CONTACTS]] == [(10, 1.0), (36_000, 3600.0)]
    assert [(w.requests, w.seconds) for w in general[OTHER]] == [(100, 3600.0)]
    advanced = BrevoSettings(rate_tier="advanced", other_per_hour=150).rate_windows()
    assert advanced[CONTACTS][0].requests == 20
    assert [(w.requests, w.seconds) for w in advanced[OTHER]] == [(150, 3600.0)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"currency": "euro"}, "three-letter ISO 4217"),
        ({"property_attributes": {"jobtitle": "job-title"}}, "upper-case letters"),
        ({"won_stages": []}, "at least 1"),
        ({"contacts_page": 5000}, "less than or equal to 1000"),
        ({"rate_tier": "gold"}, "general"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(settings, message):
    with pytest.raises(ValueError, match=message):
        BrevoSettings.model_validate(settings)


# -- offset paging ---------------------------------------------------------------------------


class _Store:
    """An id-ordered list served by offset, where items can vanish between pages."""

    def __init__(self, n: int) -> None:
        self.items = [{"id": i} for i in range(1, n + 1)]
        self.requests: list[tuple[int, int]] = []
        self.before_fetch = lambda: None

    def fetch(self, offset: int, limit: int) -> list[dict[str, int]]:
        self.before_fetch()
        self.requests.append((offset, limit))
        return self.items[offset : offset + limit]


def _ids(pages):
    return [i["id"] for items, _ in pages for i in items]


@pytest.mark.parametrize("n", [0, 1, 9, 10, 11, 27])
def test_offset_pages_yield_every_item_once_with_one_item_overlap(n):
    store = _Store(n)
    assert _ids(offset_pages(store.fetch, limit=10)) == list(range(1, n + 1))
    # each request after the first starts on the last item already seen
    assert all(
        off == prev_off + 9
        for (prev_off, _), (off, _) in zip(store.requests, store.requests[1:], strict=False)
    )


def test_offset_pages_step_back_when_earlier_items_are_deleted_mid_pull():
    store = _Store(30)
    calls = 0

    def delete_two_seen_items():
        nonlocal calls
        calls += 1
        if calls == 2:  # after the first page: items 3 and 4 (already yielded) disappear
            del store.items[2:4]

    store.before_fetch = delete_two_seen_items
    got = _ids(offset_pages(store.fetch, limit=10))
    assert got == sorted(set(got)), "no item is yielded twice"
    assert set(got) == set(range(1, 31)), "no item that stayed is skipped"


def test_offset_pages_resume_from_a_token_and_detect_a_stale_one():
    store = _Store(25)
    pages = offset_pages(store.fetch, limit=10)
    first, cursor = next(pages)
    assert cursor.token() == "10:10"
    resumed = offset_pages(store.fetch, limit=10, cursor=PageCursor.parse(cursor.token()))
    assert _ids(resumed) == list(range(11, 26))
    del store.items[0]  # the list shifted since the token was taken
    again = offset_pages(store.fetch, limit=10, cursor=PageCursor.parse("10:10"))
    assert 11 in _ids(again)
    assert PageCursor.parse("garbage") == PageCursor()
    assert PageCursor.parse(None) == PageCursor()


def test_offset_pages_give_up_when_records_keep_vanishing():
    store = _Store(100)

    def churn():
        if store.requests:
            del store.items[0]

    store.before_fetch = churn
    with pytest.raises(TransientError, match="disappearing while paging"):
        _ids(offset_pages(store.fetch, limit=10, max_rewinds=3))
