"""HubSpot's data rules, as the sandbox enforces them: property types and value formats, list filters.

Values are stored the way HubSpot returns them: strings, absent when empty. The emulated
portal (:mod:`.account`) and the handlers (:mod:`.properties`, :mod:`.lists`) use these rules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

#: Valid (type, fieldType) pairs; HubSpot refuses others.
FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "html", "phonenumber", "file"}),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
    "phone_number": frozenset({"phonenumber"}),
}
PROPERTY_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"})
DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso(when: dt.datetime) -> str:
    """HubSpot's timestamp format: UTC with milliseconds and a Z."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def id_key(record_id: str) -> tuple[int, str]:
    """Orders numeric ids numerically (HubSpot pages by id)."""
    return (len(record_id), record_id)


class InvalidValue(Exception):
    """A property value HubSpot would refuse; ``code`` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Property:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    hubspot_defined: bool = False
    read_only: bool = False
    created_at: str = ""
    display_order: int = -1

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": self.description,
            "options": [dict(o) for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": False,
            "hidden": False,
            "formField": not self.read_only,
            "archived": False,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        if self.created_at:
            body["createdAt"] = body["updatedAt"] = self.created_at
        return body

    def normalise(self, raw: str) -> str | None:
        """The stored form of a written value; None clears it. Raises InvalidValue when invalid."""
        if raw == "":
            return None
        if self.type == "number":
            try:
                number = Decimal(raw.strip())
            except InvalidOperation:
                number = Decimal("NaN")
            if not number.is_finite() or raw.strip() != raw:
                raise InvalidValue("INVALID_DECIMAL", f"{raw!r} is not a valid number for {self.name}")
            return format(number.normalize(), "f")
        if self.type == "date":
            return _date_value(self.name, raw)
        if self.type == "datetime":
            return iso(_datetime_value(self.name, raw))
        if self.type == "bool":
            if raw not in ("true", "false"):
                raise InvalidValue("INVALID_BOOLEAN", f"{raw!r} is not true or false for {self.name}")
            return raw
        if self.type == "enumeration":
            allowed = {str(o["value"]) for o in self.options}
            values = raw.split(";") if self.field_type == "checkbox" else [raw]
            if any(v not in allowed for v in values):
                raise InvalidValue(
                    "INVALID_OPTION", f"{raw!r} is not one of the allowed options for {self.name}"
                )
            return raw
        if len(raw) > 65_536:
            raise InvalidValue("INVALID_STRING", f"value too long for {self.name}")
        return raw


def _date_value(name: str, raw: str) -> str:
    """Date properties take YYYY-MM-DD or ms since the epoch at midnight UTC."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            pass
    elif re.fullmatch(r"-?\d+", raw):
        ms = int(raw)
        if ms % DAY_MS == 0:
            return (_EPOCH + dt.timedelta(milliseconds=ms)).date().isoformat()
        raise InvalidValue(
            "INVALID_DATE", f"{raw} is not midnight UTC; date properties take whole days for {name}"
        )
    raise InvalidValue("INVALID_DATE", f"{raw!r} is not a date (YYYY-MM-DD or ms at midnight UTC) for {name}")


def _datetime_value(name: str, raw: str) -> dt.datetime:
    if re.fullmatch(r"-?\d+", raw):
        return _EPOCH + dt.timedelta(milliseconds=int(raw))
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("INVALID_DATETIME", f"{raw!r} is not a datetime for {name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def check_property_input(body: Any, groups: Iterable[str]) -> str | None:
    """Why a ``PropertyCreate`` is invalid (whole request → 400), or None."""
    if not isinstance(body, dict):
        return "each input must be an object"
    missing = [
        k for k in ("name", "label", "type", "fieldType", "groupName") if not isinstance(body.get(k), str)
    ]
    if missing:
        return f"missing required field(s): {', '.join(missing)}"
    if not PROPERTY_NAME.fullmatch(body["name"]):
        return f"property name {body['name']!r} must be lower case, start with a letter, use a-z, 0-9 and _"
    kind, field_type = body["type"], body["fieldType"]
    if kind not in FIELD_TYPES:
        return f"unknown type {kind!r}"
    if field_type not in FIELD_TYPES[kind]:
        return f"fieldType {field_type!r} does not go with type {kind!r}"
    if body["groupName"] not in set(groups):
        return f"property group {body['groupName']!r} does not exist; create it first"
    return check_options(kind, body.get("options"))


def check_options(kind: str, options: Any) -> str | None:
    if kind != "enumeration":
        return "only enumeration properties take options" if options else None
    if not isinstance(options, list) or not options:
        return "enumeration properties need options"
    seen: set[str] = set()
    for o in options:
        if not isinstance(o, dict) or not all(k in o for k in ("label", "value", "hidden")):
            return "each option needs label, value and hidden"
        if o["value"] in seen:
            return f"option value {o['value']!r} appears twice"
        seen.add(str(o["value"]))
    return None


def stored_options(options: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "label": str(o["label"]),
            "value": str(o["value"]),
            "hidden": bool(o.get("hidden", False)),
            "displayOrder": int(o.get("displayOrder", i)),
        }
        for i, o in enumerate(options)
    ]


def _enum_operation(op: Mapping[str, Any]) -> str | None:
    for k in ("operationType", "operator", "values", "includeObjectsWithNoValueSet"):
        if k not in op:
            return f"ENUMERATION operation needs {k}"
    if op["operator"] not in ("IS_ANY_OF", "IS_NONE_OF"):
        return f"operator {op['operator']!r} is not supported for ENUMERATION by the sandbox"
    if not isinstance(op["values"], list):
        return "ENUMERATION values must be a list"
    return None


def check_filter_branch(branch: Any, properties: Mapping[str, Property], *, root: bool = True) -> str | None:
    """Why a list filter is invalid or beyond the sandbox, or None.

    Like HubSpot's own examples, the root must be an OR branch holding AND branches.
    """
    if not isinstance(branch, dict):
        return "filterBranch must be an object"
    for k in ("filterBranchType", "filterBranchOperator", "filters", "filterBranches"):
        if k not in branch:
            return f"filter branch needs {k}"
    kind = branch["filterBranchType"]
    if root and kind != "OR":
        return "the root filter branch must be of type OR"
    if kind not in ("OR", "AND"):
        return f"filter branch type {kind!r} is not supported by the sandbox"
    for f in branch["filters"]:
        if not isinstance(f, dict) or f.get("filterType") != "PROPERTY":
            return "only PROPERTY filters are supported by the sandbox"
        for k in ("property", "operation"):
            if k not in f:
                return f"PROPERTY filter needs {k}"
        prop = properties.get(str(f["property"]))
        if prop is None:
            return f"property {f['property']!r} does not exist"
        op = f["operation"]
        if not isinstance(op, dict) or op.get("operationType") != "ENUMERATION":
            return "only ENUMERATION operations are supported by the sandbox"
        if prop.type != "enumeration":
            return f"property {prop.name!r} is not an enumeration"
        problem = _enum_operation(op)
        if problem:
            return problem
    for child in branch["filterBranches"]:
        problem = check_filter_branch(child, properties, root=False)
        if problem:
            return problem
    return None


def matches(branch: Mapping[str, Any], props: Mapping[str, str]) -> bool:
    """Does a contact with these property values satisfy a (validated) filter branch?"""
    results = [_filter_matches(f, props) for f in branch["filters"]]
    results += [matches(b, props) for b in branch["filterBranches"]]
    if branch["filterBranchType"] == "AND":
        return all(results)
    return any(results)


def _filter_matches(f: Mapping[str, Any], props: Mapping[str, str]) -> bool:
    op = f["operation"]
    value = props.get(str(f["property"]))
    if value is None:
        return bool(op["includeObjectsWithNoValueSet"])
    hit = bool(set(value.split(";")) & {str(v) for v in op["values"]})
    return hit if op["operator"] == "IS_ANY_OF" else not hit
