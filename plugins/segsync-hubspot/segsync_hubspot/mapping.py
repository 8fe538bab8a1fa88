"""Pure conversions between HubSpot's wire JSON and segsync's models. No IO, no SDK.

Everything here takes and returns the JSON shapes of the HubSpot API (camelCase keys, all
property values strings), so it is tested on small JSON fixtures. Rejections quote the value
they refuse the way :func:`segsync.core.record_checks.quote` does (cut short, e-mail addresses
masked); failures never quote vendor messages, which can hold PII.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from segsync import (
    Contact,
    FieldSpec,
    FieldType,
    FieldValue,
    ListSpec,
    Purchase,
    RecordFailure,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
    bad_text,
    is_blank,
    quote,
    read_amount,
)
from segsync import parse_number as _parse_number

#: HubSpot (type, fieldType) for each segsync field type.
HUBSPOT_TYPES: dict[FieldType, tuple[str, str]] = {
    "string": ("string", "text"),
    "number": ("number", "number"),
    "date": ("date", "date"),
    "enumeration": ("enumeration", "select"),
}
CONTACTS_OBJECT_TYPE_ID = "0-1"

#: Deal properties a purchase is made from.
DEAL_PROPERTIES = (
    "amount",
    "amount_in_home_currency",
    "deal_currency_code",
    "closedate",
    "dealstage",
    "pipeline",
    "hs_lastmodifieddate",
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_MS = 86_400_000
_EPOCH_MS = re.compile(r"-?[0-9]{9,}")
#: A managed number of 10**28 or more is not one segsync wrote (its Decimal totals have 28
#: digits): it stays text, so the planner rewrites it, and never becomes an int too long to
#: store or print (int() of "1e999999999" would not return).
_MAX_MANAGED_DIGITS = 28

# -- values --------------------------------------------------------------------------------


def format_value(value: FieldValue) -> str:
    """The string HubSpot accepts for a value; ``""`` clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int: keep HubSpot's spelling
        return "true" if value else "false"
    if isinstance(value, Decimal):
        # normalize() drops trailing zeros; "f" keeps exponents out ("1E+2" is not a number to HubSpot)
        return format(value.normalize(), "f")
    if isinstance(value, dt.date):  # date only: FieldValue has no datetimes
        return value.isoformat()
    return str(value)


def parse_number(raw: str) -> Decimal | None:
    return _parse_number(raw)


def parse_datetime(raw: str | None) -> dt.datetime | None:
    """HubSpot datetimes: ISO 8601 (``2024-05-01T12:00:00.000Z``), a date, or ms since the epoch.

    None when unreadable, or when the milliseconds fall outside the years 1 to 9999.
    """
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if _EPOCH_MS.fullmatch(text):
        try:
            return _EPOCH + dt.timedelta(milliseconds=int(text))
        except (OverflowError, ValueError):  # ValueError: more digits than int() reads
            return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_value(spec: FieldSpec, raw: str | None) -> FieldValue:
    """A managed property's CRM string back in core types; unparseable text is kept as text.

    Keeping the text (rather than dropping it) makes the planner see a difference and rewrite
    a value someone edited by hand.
    """
    if raw is None or raw == "":
        return None
    if spec.type == "number":
        number = parse_number(raw)
        if number is None or number.adjusted() >= _MAX_MANAGED_DIGITS:
            return raw
        return int(number) if number == number.to_integral_value() else number
    if spec.type == "date":
        when = parse_datetime(raw)
        try:
            return when.astimezone(dt.UTC).date() if when else raw
        except OverflowError:  # year 1 or 9999 moved across midnight by its offset
            return raw
    return raw


# -- contacts ------------------------------------------------------------------------------


def contact_from_record(
    record: Mapping[str, Any], properties: Sequence[str], managed: Sequence[FieldSpec]
) -> Contact:
    """One contact of a GET page. A missing email is passed on: the core decides about it."""
    props: Mapping[str, Any] = record.get("properties") or {}

    def text(name: str) -> str | None:
        value = props.get(name)
        return None if value is None or value == "" else str(value)

    return Contact(
        id=str(record["id"]),
        email=text("email"),
        properties={name: text(name) for name in properties},
        managed={spec.key: parse_value(spec, text(spec.key)) for spec in managed},
    )


# -- deals ---------------------------------------------------------------------------------


def won_stage_ids(pipelines: Iterable[Mapping[str, Any]], only: Sequence[str] = ()) -> frozenset[str]:
    """Stage ids that mean "closed won": closed, with probability 1, in the chosen pipelines."""
    won: set[str] = set()
    for pipeline in pipelines:
        if pipeline.get("archived") or (only and str(pipeline.get("id")) not in only):
            continue
        for stage in pipeline.get("stages") or ():
            meta = stage.get("metadata") or {}
            probability = parse_number(str(meta.get("probability", "")))
            if not stage.get("archived") and str(meta.get("isClosed")).lower() == "true" and probability == 1:
                won.add(str(stage["id"]))
    return frozenset(won)


def deal_purchases(
    record: Mapping[str, Any], contact_ids: Sequence[str], home_currency: str | None
) -> list[Purchase] | Rejection:
    """A won deal as one purchase per associated contact, or the reason it cannot count.

    Amounts and dates are checked as :mod:`segsync.core.record_checks` says; a rejection quotes
    the value it refuses.
    """
    deal_id = str(record["id"])
    props: Mapping[str, Any] = record.get("properties") or {}

    def reject(reason: str) -> Rejection:
        return Rejection(kind="purchase", record_id=deal_id, reason=reason)

    home = props.get("amount_in_home_currency")
    if _parse_number(home) is not None:  # HubSpot's own conversion, when it could make one
        field, raw, currency = "amount_in_home_currency", home, home_currency
    else:
        field, raw = "amount", props.get("amount")
        if is_blank(raw):
            return reject("won deal has no amount")
        currency = str(props.get("deal_currency_code") or "") or home_currency
    amount = read_amount(raw)
    if isinstance(amount, str):
        return reject(f"won deal {field} {amount}")
    closed_at = _close_date(props.get("closedate"))
    if isinstance(closed_at, str):
        return reject(closed_at)
    if not contact_ids:
        return reject("won deal has no associated contact")
    if bad_text(deal_id) or any(bad_text(str(c)) for c in contact_ids):
        return reject("won deal id or contact id holds a control character or an unpaired surrogate")
    modified_at = parse_datetime(_text_or_none(props.get("hs_lastmodifieddate")))
    return [
        Purchase(
            id=deal_id,
            contact_id=cid,
            amount=amount,
            currency=currency,
            closed_at=closed_at,
            modified_at=modified_at,
        )
        for cid in dict.fromkeys(contact_ids)
    ]


def _close_date(raw: Any) -> dt.datetime | str:
    """A won deal's ``closedate``, or why it has none."""
    if is_blank(raw):
        return "won deal has no close date (closedate)"
    when = parse_datetime(str(raw))
    if when is not None:
        return when
    problem = (
        "is out of range (epoch milliseconds beyond the years 1 to 9999)"
        if _EPOCH_MS.fullmatch(str(raw).strip())
        else "is unreadable (expected an ISO 8601 date-time or epoch milliseconds)"
    )
    return f"won deal close date (closedate) {quote(raw)} {problem}"


def _text_or_none(raw: Any) -> str | None:
    return None if raw is None else str(raw)


# -- properties ----------------------------------------------------------------------------


def group_body(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": -1}


def property_body(spec: FieldSpec, group: str) -> dict[str, Any]:
    """``PropertyCreate`` for a field spec; enumerations carry one option per value."""
    hs_type, field_type = HUBSPOT_TYPES[spec.type]
    body: dict[str, Any] = {
        "name": spec.key,
        "label": spec.label,
        "type": hs_type,
        "fieldType": field_type,
        "groupName": group,
        "description": spec.description,
    }
    if spec.type == "enumeration":
        body["options"] = options_body(spec)
    return body


def options_body(spec: FieldSpec) -> list[dict[str, Any]]:
    return [
        {"label": o.label, "value": o.value, "hidden": False, "displayOrder": i}
        for i, o in enumerate(spec.options)
    ]


def remote_field(prop: Mapping[str, Any]) -> RemoteField:
    return RemoteField(
        name=str(prop["name"]),
        type=str(prop.get("type") or ""),
        options=tuple(str(o["value"]) for o in prop.get("options") or ()),
        group=prop.get("groupName"),
    )


def field_conflict(spec: FieldSpec, remote: RemoteField) -> str | None:
    """Why an existing property cannot hold the spec's values, or None (missing options are fine)."""
    wanted, _ = HUBSPOT_TYPES[spec.type]
    if remote.type != wanted:
        return (
            f"contact property {remote.name!r} already exists with type {remote.type!r}, segsync needs "
            f"{wanted!r}; rename or delete that property in HubSpot, segsync will not change it"
        )
    return None


# -- lists ---------------------------------------------------------------------------------


def list_body(spec: ListSpec, *, dynamic: bool) -> dict[str, Any]:
    """``ListCreateRequest``: MANUAL, or DYNAMIC filtering the segment enumeration property."""
    body: dict[str, Any] = {
        "name": spec.name,
        "objectTypeId": CONTACTS_OBJECT_TYPE_ID,
        "processingType": "DYNAMIC" if dynamic else "MANUAL",
    }
    if dynamic:
        if not spec.filter_field or not spec.filter_value:
            raise ValueError(f"list {spec.key!r} has no filter field/value, so it cannot be DYNAMIC")
        body["filterBranch"] = {
            "filterBranchType": "OR",
            "filterBranchOperator": "OR",
            "filters": [],
            "filterBranches": [
                {
                    "filterBranchType": "AND",
                    "filterBranchOperator": "AND",
                    "filterBranches": [],
                    "filters": [
                        {
                            "filterType": "PROPERTY",
                            "property": spec.filter_field,
                            "operation": {
                                "operationType": "ENUMERATION",
                                "operator": "IS_ANY_OF",
                                "values": [spec.filter_value],
                                "includeObjectsWithNoValueSet": False,
                            },
                        }
                    ],
                }
            ],
        }
    return body


def remote_list(obj: Mapping[str, Any]) -> RemoteList:
    size = _parse_number(obj.get("size"))
    return RemoteList(
        id=str(obj["listId"]),
        name=str(obj["name"]),
        dynamic=obj.get("processingType") == "DYNAMIC",
        # a size that is no count (absent, "n/a", 1e30) is unknown, never a crash
        size=int(size) if size is not None and 0 <= size < 2**63 else None,
    )


def membership_result(requested: Sequence[str], missing: Iterable[str], *, adding: bool) -> WriteResult:
    """Missing ids failed an add (the contact is gone) but satisfy a remove (it is not a member)."""
    gone = {str(m) for m in missing}
    if not adding:
        return WriteResult(ok=tuple(requested))
    return WriteResult(
        ok=tuple(i for i in requested if i not in gone),
        failed=tuple(
            RecordFailure(record_id=i, reason="contact no longer exists in HubSpot")
            for i in requested
            if i in gone
        ),
    )


# -- batch writes --------------------------------------------------------------------------


def error_reason(error: Mapping[str, Any]) -> str:
    """Category, sub-category and property names of a HubSpot error; never its message."""
    parts = [str(error.get("category") or "ERROR")]
    sub = error.get("subCategory")
    codes = [sub] if isinstance(sub, str) and sub else []
    codes += [str(d["code"]) for d in error.get("errors") or () if isinstance(d, dict) and d.get("code")]
    if codes:
        parts.append(f"({', '.join(dict.fromkeys(codes))})")
    context: Mapping[str, Any] = error.get("context") or {}
    names = context.get("propertyName") or context.get("properties")
    if names:
        parts.append("on " + ", ".join(str(n) for n in names))
    return " ".join(parts)


def error_ids(error: Mapping[str, Any]) -> list[str]:
    context: Mapping[str, Any] = error.get("context") or {}
    ids = [str(i) for i in context.get("ids") or ()]
    if error.get("id"):
        ids.append(str(error["id"]))
    return list(dict.fromkeys(ids))


def batch_result(requested: Sequence[str], response: Mapping[str, Any]) -> WriteResult:
    """Per-record outcome of a batch write answered 200 or 207.

    A record neither in ``results`` nor named by an error is reported failed rather than
    assumed written: a 207 whose errors name no ids must not pass silently.
    """
    done = {str(r["id"]) for r in response.get("results") or ()}
    reasons: dict[str, str] = {}
    unattributed: list[str] = []
    for error in response.get("errors") or ():
        ids = error_ids(error)
        if not ids:
            unattributed.append(error_reason(error))
        for i in ids:
            reasons.setdefault(i, error_reason(error))
    fallback = "; ".join(dict.fromkeys(unattributed)) or "HubSpot returned no result for this record"
    failed = tuple(
        RecordFailure(record_id=i, reason=reasons.get(i, fallback))
        for i in requested
        if i not in done or i in reasons
    )
    failed_ids = {f.record_id for f in failed}
    return WriteResult(ok=tuple(i for i in requested if i not in failed_ids), failed=failed)
