"""Generated CRM records, in the raw JSON shapes each platform's API returns, through the
plugin's mapping and then :func:`segsync.core.desired.compute` (issue 7, "Trust").

For HubSpot and for Brevo, whatever the records hold (amounts, dates, text with NUL or
unpaired surrogates, odd ids, missing fields):

* no exception escapes the mapping or compute;
* every record is accepted or rejected with a reason: each contact, each deal or order, and
  each purchase (one per contact of a deal);
* each accepted contact's written order count and revenue are those of its accepted purchases.

Deterministic (``derandomize``, no example database) and a few seconds long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segsync.core.desired import compute, desired_fields
from segsync.core.models import Contact, Purchase, Rejection
from segsync.core.record_checks import as_written
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.config import parse_config
from segsync.project.packs import load_packs
from segsync_brevo import mapping as brevo
from segsync_hubspot import mapping as hubspot

AS_OF = dt.date(2026, 1, 15)
ROOT = Path(__file__).resolve().parents[1]
#: the shipped packs, and rules on contact properties, so odd property text meets the rules too
CONFIG = parse_config(
    '[segments]\npacks = ["rfm-standard", "lifecycle"]\n'
    '[[segments.custom]]\nkey = "props"\nmode = "independent"\n'
    '[[segments.custom.segments]]\nkey = "adults"\nname = "Adults"\n'
    'when = { field = "age", op = "gte", value = 30 }\n'
    '[[segments.custom.segments]]\nkey = "adas"\nname = "Adas"\n'
    'when = { field = "firstname", op = "eq", value = "Ada" }\n'
    '[[segments.custom.segments]]\nkey = "fresh"\nname = "Fresh"\n'
    'when = { field = "createdate", op = "within_last_days", value = 90 }\n',
    ROOT / "segsync.toml",
)
REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))
PACKS = load_packs(CONFIG, REGISTRY)
FIELDS = desired_fields(CONFIG, PACKS)
CENT = Decimal("0.01")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- raw values ------------------------------------------------------------------------------

#: any code point, NUL and unpaired surrogates included (hypothesis leaves those out by default)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
ODD_NUMBERS = st.sampled_from(
    ["1e27", "1e30", "1e400", "-1e400", "1e-400", "NaN", "sNaN", "Infinity", "-0", "0E-30", "1,234.50",
     " 12 ", "1.5E3", "999999999999999.99", "1000000000000000.01", "-25", "call me", "", "  ", "١٢", "12\x00"]
)  # fmt: skip
NUMBER_TEXT = st.one_of(
    ODD_NUMBERS,
    st.decimals(places=2, min_value=-1000, max_value=10_000).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    ANY_TEXT,
)
OFFSETS = st.sampled_from(
    [None, dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]
)
MOMENTS = st.datetimes(timezones=OFFSETS)
RECENT = st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2026, 2, 15), timezones=st.just(dt.UTC))
DATE_TEXT = st.one_of(
    RECENT.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    RECENT.map(lambda d: d.date().isoformat()),
    MOMENTS.map(dt.datetime.isoformat),
    st.integers(-(10**21), 10**21).map(str),  # epoch milliseconds, far out of range too
    st.sampled_from(
        ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "31/12/2025", "2025-13-01", "-86400000", ""]
    ),
    ANY_TEXT,
)
JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), NUMBER_TEXT, DATE_TEXT
)
#: a small pool, so contacts repeat, deals name contacts nobody pulled, and odd ids turn up
CONTACT_IDS = st.sampled_from(["1", "2", "3", "4", "5", "512", "9" * 30, "", "7\x00", "\ud800"])
EMAILS = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", "a\x00@example.com", "b\ud800@example.com"]),
    ANY_TEXT,
)


def optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about four times in five, so enough records are accepted for the totals to be
    tested (not a boundary value of the draw: hypothesis favours those)."""
    return st.integers(0, 9).flatmap(lambda i: odd if i in (4, 5) else good)


GOOD_AMOUNT = st.decimals(places=2, min_value=-50, max_value=5000).map(str)
AMOUNT_TEXT = mostly(GOOD_AMOUNT, NUMBER_TEXT)
CLOSE_TEXT = mostly(RECENT.map(lambda d: d.isoformat().replace("+00:00", "Z")), DATE_TEXT)
GOOD_EMAIL = st.text("abcxyz.+", min_size=1, max_size=6).map(lambda s: f"{s}@example.com")
EMAIL = mostly(GOOD_EMAIL, EMAILS)
ID_SUFFIX = mostly(st.just(""), st.sampled_from(["\x00", "\ud800", " "]))


# -- the check both platforms share ----------------------------------------------------------


def check(contacts: Sequence[Contact], mapped: Sequence[tuple[str, Sequence[Purchase | Rejection]]]) -> None:
    """``mapped``: (record id, what the mapping made of it) for every deal or order that counts."""
    purchases: list[Purchase] = []
    for record_id, records in mapped:
        assert records, f"record {record_id!r} neither became a purchase nor was rejected"
        escaped = Rejection(kind="purchase", record_id=record_id, reason="-").record_id
        for rec in records:
            if isinstance(rec, Rejection):
                assert (rec.kind, rec.record_id) == ("purchase", escaped)
                assert rec.reason.strip()
            else:
                assert rec.id == record_id
                purchases.append(rec)

    desired = compute(contacts, purchases, config=CONFIG, packs=PACKS, registry=REGISTRY, as_of=AS_OF)
    assert desired.summary.rejected == len(desired.rejections)
    assert all(r.reason.strip() and (r.record_id + r.reason).encode() for r in desired.rejections)

    contact_rejections = {r.record_id for r in desired.rejections if r.kind == "contact"}
    for c in contacts:
        escaped = Rejection(kind="contact", record_id=c.id, reason="-").record_id
        assert c.id in desired.values or escaped in contact_rejections, f"contact {c.id!r} is unaccounted for"

    reasons: dict[str, list[str]] = {}
    for r in desired.rejections:
        if r.kind == "purchase":
            reasons.setdefault(r.record_id, []).append(r.reason)
    accepted: dict[str, list[Decimal]] = {}
    for p in purchases:
        found = reasons.get(p.id, [])
        # amount, currency and date are the deal's: a rejection for those covers all its purchases
        whole_deal = [
            r for r in found if not r.startswith("contact ") and r != "not associated with any contact"
        ]
        this_contact = [r for r in found if r.startswith(f"contact {p.contact_id} ")]
        if not p.contact_id:
            this_contact += [r for r in found if r == "not associated with any contact"]
        if whole_deal or this_contact:
            continue
        assert p.contact_id in desired.values, (
            f"purchase {p.id!r} of {p.contact_id!r}: not counted, no reason"
        )
        accepted.setdefault(p.contact_id, []).append(p.amount)

    # what the examples exercise: pytest --hypothesis-show-statistics
    event(f"accepted purchases: {min(sum(map(len, accepted.values())), 3)}+")
    event(f"rejections: {min(len(desired.rejections), 3)}+")
    for cid, row in desired.values.items():
        amounts = accepted.get(cid, [])
        orders = sum(1 for a in amounts if a >= 0)  # refunds are subtracted, never counted
        if not orders:
            assert (row["segsync_order_count"], row["segsync_revenue"]) == (None, None), cid
            continue
        revenue = sum(amounts, Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)
        assert row["segsync_order_count"] == orders, cid
        assert row["segsync_revenue"] == as_written(revenue), cid


# -- HubSpot ---------------------------------------------------------------------------------

HS_CONTACT = st.fixed_dictionaries(
    {
        "id": mostly(st.sampled_from(["1", "2", "3", "4", "5"]), CONTACT_IDS),
        "properties": st.fixed_dictionaries(
            {"email": EMAIL},
            optional={
                "firstname": optional(ANY_TEXT),
                "age": optional(NUMBER_TEXT),
                "createdate": optional(DATE_TEXT),
                **{f.key: optional(st.one_of(ANY_TEXT, NUMBER_TEXT, DATE_TEXT)) for f in FIELDS},
            },
        ),
    }
)
HS_ASSOCIATED = mostly(st.sampled_from(["1", "2", "3", "4", "5"]), CONTACT_IDS)
HS_DEAL = st.fixed_dictionaries(
    {
        "properties": st.fixed_dictionaries(
            {"amount": AMOUNT_TEXT, "closedate": CLOSE_TEXT},
            optional={
                "amount_in_home_currency": optional(AMOUNT_TEXT),
                "deal_currency_code": st.sampled_from(["", "USD", "usd", "EUR"]),
                "hs_lastmodifieddate": optional(DATE_TEXT),
            },
        )
    }
)


@FUZZ
@given(
    contacts=st.lists(HS_CONTACT, min_size=1, max_size=8),
    deals=st.lists(
        st.tuples(HS_DEAL, mostly(st.lists(HS_ASSOCIATED, min_size=1, max_size=3), st.just([])), ID_SUFFIX),
        min_size=1,
        max_size=12,
    ),
)
def test_hubspot_records_through_mapping_and_compute(
    contacts: list[dict[str, Any]], deals: list[tuple[dict[str, Any], list[str], str]]
) -> None:
    pulled = [hubspot.contact_from_record(r, ["firstname", "age", "createdate"], FIELDS) for r in contacts]
    mapped: list[tuple[str, Sequence[Purchase | Rejection]]] = []
    for i, (deal, associated, suffix) in enumerate(deals):
        deal_id = f"{5000 + i}{suffix}"
        got = hubspot.deal_purchases({"id": deal_id, **deal}, associated, "USD")
        mapped.append((deal_id, [got] if isinstance(got, Rejection) else got))
    check(pulled, mapped)


# -- Brevo -----------------------------------------------------------------------------------

BR_MANAGED = [
    (
        f.key,
        brevo.attribute_name(f.key),
        brevo.spec_kind(f),
        {code: o.value for code, o in enumerate(f.options, start=1)},
    )
    for f in FIELDS
]
BR_CONTACT = st.fixed_dictionaries(
    {"id": mostly(st.integers(1, 5), st.sampled_from([512, 10**30])), "email": EMAIL},
    optional={
        "createdAt": optional(DATE_TEXT),
        "listIds": st.lists(st.integers(0, 4), max_size=3),
        "attributes": st.fixed_dictionaries(
            {},
            optional={
                "FIRSTNAME": JSON_SCALAR,
                "AGE": JSON_SCALAR,
                **{attr: JSON_SCALAR for _, attr, _, _ in BR_MANAGED},
            },
        ),
    },
)
BR_AMOUNT = mostly(
    st.decimals(places=2, min_value=-50, max_value=5000).map(float),
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), NUMBER_TEXT),
)
BR_DEAL = st.fixed_dictionaries(
    {
        "attributes": st.fixed_dictionaries(
            {
                "deal_stage": st.sampled_from(["s-won", "s-won", "s-lost"]),
                "amount": BR_AMOUNT,
                "close_date": mostly(CLOSE_TEXT, JSON_SCALAR),
            },
            optional={
                "last_updated_date": JSON_SCALAR,
                "deal_currency": st.sampled_from(["", "USD", "usd", "EUR", 7]),
            },
        ),
        "linkedContactsIds": st.lists(
            mostly(st.integers(1, 5), st.sampled_from([512, 10**30, "7\x00"])), min_size=1, max_size=3
        ),
    }
)
BR_ORDER = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["completed", "Completed", "cancelled"]),
        "amount": BR_AMOUNT,
        "createdAt": mostly(CLOSE_TEXT, JSON_SCALAR),
    },
    optional={"updatedAt": JSON_SCALAR},
)


@FUZZ
@given(
    contacts=st.lists(BR_CONTACT, min_size=1, max_size=8),
    deals=st.lists(st.tuples(BR_DEAL, ID_SUFFIX), min_size=1, max_size=8),
    orders=st.lists(
        st.tuples(BR_ORDER, mostly(st.sampled_from(["1", "2", "3"]), optional(CONTACT_IDS))), max_size=6
    ),
)
def test_brevo_records_through_mapping_and_compute(
    contacts: list[dict[str, Any]],
    deals: list[tuple[dict[str, Any], str]],
    orders: list[tuple[dict[str, Any], str | None]],
) -> None:
    pulled = [
        brevo.contact_from_brevo(
            r,
            properties=["email", "firstname", "age", "createdate"],
            managed=BR_MANAGED,
            list_keys={1: "rfm.champions", 2: "lifecycle.vip"},
            overrides={},
        )
        for r in contacts
    ]
    mapped: list[tuple[str, Sequence[Purchase | Rejection]]] = []
    for i, (deal, suffix) in enumerate(deals):
        deal_id = f"{0x64F0 << 80 | i:024x}{suffix}"
        got = brevo.deal_records(
            {"id": deal_id, **deal},
            won_stages={"s-won": "Sales / Won"},
            amount_attribute="amount",
            close_attribute="close_date",
            currency="USD",
            incremental=False,
            currency_attribute="deal_currency",
        )
        if deal["attributes"]["deal_stage"] == "s-won":
            mapped.append((deal_id, [r for r in got if isinstance(r, Purchase | Rejection)]))
        else:
            assert got == [], "a deal that is not won is no purchase (a full pull retracts nothing)"
    for i, (order, contact_id) in enumerate(orders):
        order_id = f"order-{i}"
        got = brevo.order_records(
            {"id": order_id, **order},
            contact_id=contact_id,
            statuses=("completed",),
            currency="USD",
            incremental=False,
        )
        if order["status"] != "cancelled":
            mapped.append((order_id, [r for r in got if isinstance(r, Purchase | Rejection)]))
    check(pulled, mapped)
