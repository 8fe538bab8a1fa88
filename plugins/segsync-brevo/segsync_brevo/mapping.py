"""Pure converters between Brevo's JSON and segsync's models. No IO, no clock.

Brevo names contact attributes in upper case (``FIRSTNAME``); segsync's neutral names are
lower snake case, so ``segsync_rfm_segment`` lives in Brevo as ``SEGSYNC_RFM_SEGMENT``. Each
segsync field type has one Brevo attribute shape: text/float/date *normal* attributes, and a
*category* attribute (integer codes with labels) for an enumeration.

Deals and orders are checked as :mod:`segsync.core.record_checks` says; a rejection quotes the value
it refuses (cut short, e-mail addresses masked).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from segsync import (
    Contact,
    FieldOption,
    FieldSpec,
    FieldValue,
    Purchase,
    PurchaseRetracted,
    Rejection,
    RemoteField,
    bad_text,
    is_blank,
    parse_number,
    quote,
    read_amount,
)

Kind = Literal["text", "float", "date", "category"]

#: segsync field type -> (Brevo attribute category, Brevo attribute type)
ATTRIBUTE_SHAPES: dict[str, tuple[str, str]] = {
    "string": ("normal", "text"),
    "number": ("normal", "float"),
    "date": ("normal", "date"),
    "enumeration": ("category", "category"),
}

#: Neutral contact property names -> Brevo attribute names (the usual ones; settings override).
NEUTRAL_ATTRIBUTES: dict[str, str] = {
    "firstname": "FIRSTNAME",
    "lastname": "LASTNAME",
    "country": "COUNTRY",
    "city": "CITY",
    "age": "AGE",
    "jobtitle": "JOB_TITLE",
    "company_size": "COMPANY_SIZE",
}

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Record = Purchase | PurchaseRetracted | Rejection


def attribute_name(key: str) -> str:
    """Brevo's name for a segsync field key: upper case, validated."""
    name = key.upper()
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"field key {key!r} cannot be a Brevo attribute name "
            "(letters, digits and underscores, starting with a letter)"
        )
    return name


def property_attribute(neutral: str, overrides: Mapping[str, str]) -> str:
    return overrides.get(neutral) or NEUTRAL_ATTRIBUTES.get(neutral) or neutral.upper()


def attribute_kind(attr: Mapping[str, Any]) -> str:
    """``category`` for category attributes, else the attribute's type (text, float, date, ...)."""
    if attr.get("category") == "category":
        return "category"
    return str(attr.get("type") or "text")


def spec_kind(spec: FieldSpec) -> Kind:
    kinds: dict[str, Kind] = {"string": "text", "number": "float", "date": "date", "enumeration": "category"}
    return kinds[spec.type]


def remote_field(attr: Mapping[str, Any], spec: FieldSpec | None = None) -> RemoteField:
    """An attribute as a RemoteField; its options are the spec's option values where a label
    matches one (Brevo keeps labels and integer codes only), else the labels themselves."""
    enumeration = list(attr.get("enumeration") or ())
    by_code = {code: value for value, code in option_codes(spec.options if spec else (), enumeration).items()}
    options = tuple(by_code.get(int(e["value"]), str(e.get("label", ""))) for e in enumeration)
    return RemoteField(
        name=str(attr["name"]),
        type=attribute_kind(attr),
        options=options,
        group=str(attr.get("category") or "") or None,
    )


def field_mismatch(spec: FieldSpec, remote: RemoteField) -> str | None:
    """None when the existing attribute can hold the spec's values, else why not."""
    category, brevo_type = ATTRIBUTE_SHAPES[spec.type]
    wanted = "category" if category == "category" else brevo_type
    if remote.type == wanted and (remote.group or category) == category:
        return None
    return (
        f"Brevo attribute {remote.name} exists as a {remote.group or '?'} attribute of type {remote.type}; "
        f"segsync needs a {category} attribute of type {brevo_type} for {spec.key}. Delete or rename it in "
        "Brevo (Contacts > Settings > Contact attributes), or give the field another key"
    )


# -- enumerations ----------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")


def _option_matches(option: FieldOption, label: str) -> bool:
    folded = label.casefold()
    return (
        option.label.casefold() == folded or option.value.casefold() == folded or _slug(label) == option.value
    )


def option_codes(options: Sequence[FieldOption], enumeration: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Option value -> Brevo integer code, matching enumeration labels to option labels."""
    codes: dict[str, int] = {}
    for item in enumeration:
        label = str(item.get("label", ""))
        for option in options:
            if option.value not in codes and _option_matches(option, label):
                codes[option.value] = int(item["value"])
                break
    return codes


def codes_from_labels(enumeration: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """When no spec is at hand: each label's slug is taken as the option value."""
    return {_slug(str(item.get("label", ""))): int(item["value"]) for item in enumeration}


def plan_enumeration(spec: FieldSpec, existing: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The enumeration that carries exactly ``spec.options``, keeping every existing code.

    Options already present keep their integer (contacts hold integers, so renumbering would
    silently move them to another segment); new options get integers above every code ever
    seen in the attribute, so a removed option's code is never reused.
    """
    codes = option_codes(spec.options, existing)
    next_code = max((int(e["value"]) for e in existing), default=0) + 1
    out: list[dict[str, Any]] = []
    for option in spec.options:
        code = codes.get(option.value)
        if code is None:
            code, next_code = next_code, next_code + 1
        out.append({"value": code, "label": option.label[:200]})
    return out


# -- values ----------------------------------------------------------------------------------


def encode_value(kind: str, value: FieldValue, codes: Mapping[str, int]) -> Any:
    """A segsync value as Brevo stores it; ``""`` clears. Raises ValueError when it cannot."""
    if value is None:
        return ""
    if kind == "category":
        code = codes.get(str(value))
        if code is None:
            raise ValueError(f"option {value!r} is not in the attribute's enumeration")
        return code
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValueError(f"{value!r} is not a number")
        return int(value) if isinstance(value, int) else float(value)
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str) and _DATE.fullmatch(value):
            return value
        raise ValueError(f"{value!r} is not a date")
    if kind == "text":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    raise ValueError(f"segsync does not write Brevo attributes of type {kind}")


def decode_value(kind: str, raw: Any, options_by_code: Mapping[int, str]) -> FieldValue:
    """A stored attribute value parsed into segsync's type; None when absent or unreadable."""
    if raw is None or raw == "":
        return None
    if kind == "category":
        if isinstance(raw, bool):
            return None
        if isinstance(raw, int):
            return options_by_code.get(raw)
        if isinstance(raw, str) and raw.isascii() and raw.isdigit():  # int("²") would raise
            return options_by_code.get(int(raw)) if len(raw) < 19 else None
        by_label = {v.casefold(): v for v in options_by_code.values()}
        return by_label.get(str(raw).casefold())
    if kind == "float":
        if isinstance(raw, bool):
            return None
        number = to_decimal(raw)
        return number
    if kind == "date":
        text = str(raw)
        if _DATE.match(text):
            try:
                return dt.date.fromisoformat(text[:10])
            except ValueError:
                return None
        return None
    return str(raw)


def to_decimal(raw: Any) -> Decimal | None:
    """A finite number from a JSON number or numeric text, else None."""
    return parse_number(raw)


def same_value(written: FieldValue, stored: FieldValue) -> bool:
    """Equality after a round trip through Brevo (floats lose Decimal digits past ~15)."""
    if isinstance(written, int | Decimal) and isinstance(stored, int | Decimal):
        a, b = Decimal(written), Decimal(stored)
        return abs(a - b) <= Decimal("1e-9") * max(Decimal(1), abs(a))
    return written == stored


def text_of(raw: Any) -> str | None:
    """A contact attribute as the string segsync's rules see (like every CRM property)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


# -- contacts --------------------------------------------------------------------------------


def contact_from_brevo(
    raw: Mapping[str, Any],
    *,
    properties: Sequence[str],
    managed: Sequence[tuple[str, str, str, Mapping[int, str]]],
    list_keys: Mapping[int, str],
    overrides: Mapping[str, str],
) -> Contact:
    """A ``GET /contacts`` item as a Contact.

    ``managed`` is ``(field key, attribute name, kind, {code: option value})`` per managed
    field; ``list_keys`` maps Brevo list ids to segsync list keys.
    """
    attributes: Mapping[str, Any] = raw.get("attributes") or {}
    email = raw.get("email")
    email = email if isinstance(email, str) and email else None
    props: dict[str, str | None] = {}
    for name in properties:
        if name == "email":
            props[name] = email
        elif name == "createdate":
            props[name] = text_of(raw.get("createdAt"))
        else:
            props[name] = text_of(attributes.get(property_attribute(name, overrides)))
    values = {key: decode_value(kind, attributes.get(attr), codes) for key, attr, kind, codes in managed}
    lists = frozenset(list_keys[i] for i in raw.get("listIds") or () if i in list_keys)
    return Contact(id=str(raw["id"]), email=email, properties=props, managed=values, lists=lists)


# -- purchases -------------------------------------------------------------------------------


def parse_datetime(text: Any) -> dt.datetime | None:
    """Brevo timestamps (``2022-05-30T07:42:05.671Z``, ``2017-05-12 12:30:00+00:00``, dates) in UTC."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip().replace(" ", "T", 1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved by its offset
        return None


def format_since(moment: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ss.SSSZ`` in UTC, the form Brevo's ``modifiedSince`` filters take."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def won_stage_ids(pipelines: Iterable[Mapping[str, Any]], won: Sequence[str]) -> dict[str, str]:
    """Stage id -> "pipeline / stage" for every stage named (or identified) in ``won``."""
    wanted = {w.casefold() for w in won}
    out: dict[str, str] = {}
    for pipeline in pipelines:
        for stage in pipeline.get("stages") or ():
            sid, name = str(stage.get("id", "")), str(stage.get("name", ""))
            if sid.casefold() in wanted or name.casefold() in wanted:
                out[sid] = f"{pipeline.get('pipeline_name') or pipeline.get('pipeline')} / {name}"
    return out


def close_date_attribute(catalogue: Iterable[Mapping[str, Any]], configured: str | None) -> str:
    """Which deal attribute holds the close date (see ``BrevoSettings.close_date_attribute``)."""
    attrs = list(catalogue)
    names = {str(a.get("internalName")) for a in attrs}
    if configured:
        return configured
    if "close_date" in names:
        return "close_date"
    for a in attrs:
        label = _slug(str(a.get("label", "")))
        if str(a.get("attributeTypeName", "")).startswith("date") and "clos" in label:
            return str(a["internalName"])
    return "stage_updated_at"


def currency_attribute(catalogue: Iterable[Mapping[str, Any]], configured: str | None) -> str | None:
    """Which deal attribute holds a deal's currency, if any (see ``BrevoSettings.currency_attribute``)."""
    if configured:
        return configured
    names = {str(a.get("internalName")) for a in catalogue}
    return next((n for n in ("deal_currency", "currency") if n in names), None)


def _amount(raw: Any, record_id: str, what: str) -> Decimal | Rejection:
    if is_blank(raw):
        return Rejection(kind="purchase", record_id=record_id, reason=f"{what} has no amount")
    number = read_amount(raw)
    if isinstance(number, str):
        return Rejection(kind="purchase", record_id=record_id, reason=f"{what} amount {number}")
    return number


def _moment(raw: Any, record_id: str, what: str, label: str, field: str) -> dt.datetime | Rejection:
    """A deal's close date or an order's date: unreadable is not the same as absent."""
    if is_blank(raw):
        return Rejection(kind="purchase", record_id=record_id, reason=f"{what} has no {label} ({field})")
    when = parse_datetime(raw)
    if when is None:
        reason = (
            f"{what} {label} ({field}) {quote(raw)} is unreadable "
            "(expected an ISO 8601 date-time such as 2025-12-01T12:00:00Z)"
        )
        return Rejection(kind="purchase", record_id=record_id, reason=reason)
    return when


def _bad_ids(record_id: str, contacts: Sequence[str], what: str) -> Rejection | None:
    if bad_text(record_id) or any(bad_text(c) for c in contacts):
        reason = f"{what} id or contact id holds a control character or an unpaired surrogate"
        return Rejection(kind="purchase", record_id=record_id, reason=reason)
    return None


def deal_records(
    deal: Mapping[str, Any],
    *,
    won_stages: Mapping[str, str],
    amount_attribute: str,
    close_attribute: str,
    currency: str | None,
    incremental: bool,
    currency_attribute: str | None = None,
) -> list[Record]:
    """A ``GET /crm/deals`` item as purchases (one per linked contact), a retraction or rejections."""
    deal_id = str(deal.get("id", ""))
    attributes: Mapping[str, Any] = deal.get("attributes") or {}
    if str(attributes.get("deal_stage", "")) not in won_stages:
        return [PurchaseRetracted(id=deal_id)] if incremental else []
    amount = _amount(attributes.get(amount_attribute), deal_id, "won deal")
    if isinstance(amount, Rejection):
        return [amount]
    closed = _moment(attributes.get(close_attribute), deal_id, "won deal", "close date", close_attribute)
    if isinstance(closed, Rejection):
        return [closed]
    contacts = [str(c) for c in deal.get("linkedContactsIds") or ()]
    if not contacts:
        return [Rejection(kind="purchase", record_id=deal_id, reason="won deal is linked to no contact")]
    bad = _bad_ids(deal_id, contacts, "won deal")
    if bad is not None:
        return [bad]
    modified = parse_datetime(attributes.get("last_updated_date"))
    own = attributes.get(currency_attribute) if currency_attribute else None
    if isinstance(own, str) and own.strip():
        currency = own.strip().upper()
    return [
        Purchase(
            id=deal_id, contact_id=c, amount=amount, currency=currency, closed_at=closed, modified_at=modified
        )
        for c in dict.fromkeys(contacts)
    ]


def order_records(
    order: Mapping[str, Any],
    *,
    contact_id: str | None,
    statuses: Sequence[str],
    currency: str | None,
    incremental: bool,
) -> list[Record]:
    """A ``GET /orders`` item as a purchase, a retraction or a rejection."""
    order_id = str(order.get("id", ""))
    if str(order.get("status", "")).casefold() not in {s.casefold() for s in statuses}:
        return [PurchaseRetracted(id=order_id)] if incremental else []
    amount = _amount(order.get("amount"), order_id, "order")
    if isinstance(amount, Rejection):
        return [amount]
    closed = _moment(order.get("createdAt"), order_id, "order", "date", "createdAt")
    if isinstance(closed, Rejection):
        return [closed]
    if contact_id is None:
        return [Rejection(kind="purchase", record_id=order_id, reason="order belongs to no known contact")]
    bad = _bad_ids(order_id, [contact_id], "order")
    if bad is not None:
        return [bad]
    return [
        Purchase(
            id=order_id,
            contact_id=contact_id,
            amount=amount,
            currency=currency,
            closed_at=closed,
            modified_at=parse_datetime(order.get("updatedAt")),
        )
    ]
