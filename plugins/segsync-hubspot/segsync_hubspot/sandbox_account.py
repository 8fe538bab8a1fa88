"""The emulated HubSpot portal behind the sandbox: records, properties, lists, and their rules.

This module knows HubSpot's data rules (property types and value formats, archived records,
list kinds and filters, stage metadata) and renders records in the API's JSON shapes. HTTP
concerns (routes, auth, batch maxima, status codes) live in :mod:`segsync_hubspot.sandbox`.
All values are stored the way HubSpot returns them: strings, absent when empty.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from segsync.sandbox import SeedData, SeedRules, check_seed

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

HOME_PIPELINE = "default"

#: HubSpot's own properties the sandbox starts with: (object type, group, [(name, label, type, fieldType)]).
DEFAULT_PROPERTIES: tuple[tuple[str, str, tuple[tuple[str, str, str, str], ...]], ...] = (
    (
        "contacts",
        "contactinformation",
        (
            ("email", "Email", "string", "text"),
            ("firstname", "First Name", "string", "text"),
            ("lastname", "Last Name", "string", "text"),
            ("country", "Country/Region", "string", "text"),
            ("city", "City", "string", "text"),
            ("jobtitle", "Job Title", "string", "text"),
            ("company_size", "Company size", "string", "text"),
            ("createdate", "Create Date", "datetime", "date"),
            ("lastmodifieddate", "Last Modified Date", "datetime", "date"),
            ("hs_object_id", "Record ID", "number", "number"),
        ),
    ),
    (
        "deals",
        "dealinformation",
        (
            ("dealname", "Deal Name", "string", "text"),
            ("amount", "Amount", "number", "number"),
            ("amount_in_home_currency", "Amount in company currency", "number", "number"),
            ("deal_currency_code", "Currency", "string", "text"),
            ("closedate", "Close Date", "datetime", "date"),
            ("dealstage", "Deal Stage", "string", "text"),
            ("pipeline", "Pipeline", "string", "text"),
            ("createdate", "Create Date", "datetime", "date"),
            ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
            ("hs_object_id", "Record ID", "number", "number"),
        ),
    ),
)
#: HubSpot record ids are integers, for contacts and deals alike.
SEED_RULES = SeedRules("HubSpot", integer_contact_ids=True, integer_deal_ids=True)
STAGE_FOR_SEED = {"won": "closedwon", "lost": "closedlost", "open": "appointmentscheduled"}


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


@dataclass
class Record:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False
    contacts: list[str] = field(default_factory=list)  # deals only: associated contact ids

    def json(self, names: Iterable[str], associations: Sequence[str] | None = None) -> dict[str, Any]:
        """The API shape; ``associations`` (deals only) adds the inline contact ids."""
        wanted = ["hs_object_id", "createdate", "lastmodifieddate", *names]
        props = {n: self.properties[n] for n in dict.fromkeys(wanted) if n in self.properties}
        body: dict[str, Any] = {
            "id": self.id,
            "properties": props,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        if associations:
            body["associations"] = {
                "contacts": {"results": [{"id": c, "type": "deal_to_contact"} for c in associations]}
            }
        return body


@dataclass
class HubList:
    id: str
    name: str
    processing_type: str
    created_at: str
    filter_branch: dict[str, Any] | None = None
    members: dict[str, str] = field(default_factory=dict)  # record id -> membership timestamp
    managed: bool = True  # created through the API (segsync), not by the test as "a user"
    deleted: bool = False
    version: int = 1
    updated_at: str = ""


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


def _pipeline_json(
    pid: str, label: str, stages: Sequence[tuple[str, str, bool, str]], created: str
) -> dict[str, Any]:
    return {
        "id": pid,
        "label": label,
        "displayOrder": 0,
        "archived": False,
        "createdAt": created,
        "updatedAt": created,
        "stages": [
            {
                "id": sid,
                "label": slabel,
                "displayOrder": i,
                "archived": False,
                "createdAt": created,
                "updatedAt": created,
                "metadata": {"isClosed": "true" if closed else "false", "probability": probability},
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for i, (sid, slabel, closed, probability) in enumerate(stages)
        ],
    }


class Account:
    """One emulated portal. Callers hold the server lock while using it."""

    def __init__(self, *, home_currency: str = "USD", managed_group: str = "segsync") -> None:
        self.home_currency = home_currency
        self.managed_group = managed_group
        self.created = iso(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        self.contacts: dict[str, Record] = {}
        self.deals: dict[str, Record] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Property]] = {"contacts": {}, "deals": {}}
        self.lists: dict[str, HubList] = {}
        self._next_id = 900_000
        self._next_list = 1
        self.pipelines = [
            _pipeline_json(
                HOME_PIPELINE,
                "Sales Pipeline",
                [
                    ("appointmentscheduled", "Appointment Scheduled", False, "0.2"),
                    ("qualifiedtobuy", "Qualified To Buy", False, "0.4"),
                    ("contractsent", "Contract Sent", False, "0.9"),
                    ("closedwon", "Closed Won", True, "1.0"),
                    ("closedlost", "Closed Lost", True, "0.0"),
                ],
                self.created,
            ),
            # Custom pipelines get numeric stage ids: "won" must come from metadata, not a name.
            _pipeline_json(
                "renewals",
                "Renewals",
                [
                    ("1001", "Renewal Due", False, "0.5"),
                    ("1002", "Renewed", True, "1.0"),
                    ("1003", "Churned", True, "0.0"),
                ],
                self.created,
            ),
        ]
        self._define_defaults()

    # -- definitions ---------------------------------------------------------------------

    def _define_defaults(self) -> None:
        self.groups["contactinformation"] = {"name": "contactinformation", "label": "Contact information"}
        self.groups["dealinformation"] = {"name": "dealinformation", "label": "Deal information"}
        for object_type, group, props in DEFAULT_PROPERTIES:
            for name, label, kind, ftype in props:
                self.properties[object_type][name] = Property(
                    name, label, kind, ftype, group, hubspot_defined=True, read_only=name in READ_ONLY
                )
        # Not a HubSpot default: portals that track age add it themselves.
        self.properties["contacts"]["age"] = Property("age", "Age", "number", "number", "contactinformation")

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def new_list_id(self) -> str:
        self._next_list += 1
        return str(self._next_list)

    # -- records -------------------------------------------------------------------------

    def live(self, records: Mapping[str, Record], *, archived: bool = False) -> list[Record]:
        return sorted((r for r in records.values() if r.archived == archived), key=lambda r: id_key(r.id))

    def won_stages(self) -> set[str]:
        return {
            s["id"]
            for p in self.pipelines
            for s in p["stages"]
            if s["metadata"]["isClosed"] == "true" and s["metadata"]["probability"] == "1.0"
        }

    def deal_contacts(self, deal: Record) -> list[str]:
        return sorted(
            (c for c in deal.contacts if c in self.contacts and not self.contacts[c].archived), key=id_key
        )

    def list_members(self, hub_list: HubList) -> list[str]:
        if hub_list.processing_type == "DYNAMIC" and hub_list.filter_branch is not None:
            branch = hub_list.filter_branch
            return [c.id for c in self.live(self.contacts) if matches(branch, c.properties)]
        return sorted((m for m in hub_list.members if self._alive(m)), key=id_key)

    def _alive(self, contact_id: str) -> bool:
        c = self.contacts.get(contact_id)
        return c is not None and not c.archived

    def list_json(self, hub_list: HubList, *, include_filters: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "listId": hub_list.id,
            "listVersion": hub_list.version,
            "name": hub_list.name,
            "objectTypeId": "0-1",
            "processingStatus": "COMPLETE",
            "processingType": hub_list.processing_type,
            "size": len(self.list_members(hub_list)),
            "createdAt": hub_list.created_at,
            "updatedAt": hub_list.updated_at or hub_list.created_at,
        }
        if include_filters and hub_list.filter_branch is not None:
            body["filterBranch"] = hub_list.filter_branch
        return body

    def find_list_by_name(self, name: str) -> HubList | None:
        folded = name.casefold()
        return next(
            (lst for lst in self.lists.values() if not lst.deleted and lst.name.casefold() == folded), None
        )

    # -- seeding -------------------------------------------------------------------------

    def seed(self, data: SeedData, now: dt.datetime) -> None:
        """Load seed records; every problem is found (:func:`check_seed`) before anything is loaded."""
        self._check_seed(data)
        stamp = iso(now)
        for c in data.contacts:
            created = _seed_time(c.createdate) or stamp
            props = {
                "email": c.email,
                "firstname": c.firstname,
                "lastname": c.lastname,
                "country": c.country,
                "city": c.city,
                "age": c.age,
                "jobtitle": c.jobtitle,
                "company_size": c.company_size,
            }
            record = Record(c.id, {k: v for k, v in props.items() if v}, created, stamp)
            record.properties.update({"hs_object_id": c.id, "createdate": created, "lastmodifieddate": stamp})
            self.contacts[c.id] = record
        for p in data.purchases:
            self.add_deal(
                p.deal_id,
                [p.contact_id] if p.contact_id else [],
                amount=p.amount,
                currency=p.currency,
                closedate=_seed_time(p.closedate) or p.closedate,
                stage=STAGE_FOR_SEED.get(p.stage, p.stage),
                now=now,
            )
        self._next_id = max([self._next_id, *(int(k) for k in (*self.contacts, *self.deals))])

    def _check_seed(self, data: SeedData) -> None:
        emails = {
            c.properties["email"].casefold(): c.id
            for c in self.contacts.values()
            if c.properties.get("email")
        }
        check_seed(
            data, SEED_RULES, known_contacts=self.contacts, known_deals=self.deals, known_emails=emails
        )

    def add_deal(
        self,
        deal_id: str,
        contact_ids: Sequence[str],
        *,
        amount: str,
        currency: str,
        closedate: str,
        stage: str,
        now: dt.datetime,
        pipeline: str = HOME_PIPELINE,
    ) -> Record:
        """A deal as HubSpot holds it; amount is the raw string, even when it is not a number."""
        stamp = iso(now)
        props = {
            "dealname": f"Deal {deal_id}",
            "pipeline": pipeline,
            "dealstage": stage,
            "hs_object_id": deal_id,
            "createdate": stamp,
            "hs_lastmodifieddate": stamp,
        }
        if amount:
            props["amount"] = amount
        if currency:
            props["deal_currency_code"] = currency
        numeric = re.fullmatch(r"-?\d+(\.\d+)?", amount.strip()) is not None
        if numeric and currency in ("", self.home_currency):
            props["amount_in_home_currency"] = amount.strip()
        if closedate:
            props["closedate"] = closedate
        record = Record(deal_id, props, stamp, stamp, contacts=list(contact_ids))
        self.deals[deal_id] = record
        return record

    # -- snapshot ------------------------------------------------------------------------

    def managed_properties(self) -> list[str]:
        return sorted(n for n, p in self.properties["contacts"].items() if p.group == self.managed_group)

    def snapshot(self) -> dict[str, object]:
        names = self.managed_properties()
        fields: dict[str, dict[str, str]] = {}
        for c in self.live(self.contacts):
            values = {n: c.properties[n] for n in names if n in c.properties}
            if values:
                fields[c.id] = values
        managed_lists = [lst for lst in self.lists.values() if lst.managed and not lst.deleted]
        return {
            "fields": fields,
            "lists": {lst.name: self.list_members(lst) for lst in managed_lists},
            "field_defs": names,
            "list_names": sorted(lst.name for lst in managed_lists),
        }


def _seed_time(raw: str) -> str | None:
    """A CSV date or datetime in HubSpot's timestamp format; None when empty or unreadable."""
    text = raw.strip()
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
