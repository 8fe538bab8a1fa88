"""The emulated HubSpot portal behind the sandbox: records, properties, lists, pipelines.

It knows HubSpot's objects and renders them in the API's JSON shapes; the value and filter
rules are in :mod:`.values`. HTTP concerns (routes, auth, batch maxima, status codes) live in
:mod:`.server` and the handler modules.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segsync.sandbox import SeedData, SeedRules, check_seed
from segsync_hubspot.sandbox.values import READ_ONLY, Property, id_key, iso, matches

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


#: Contacts' modification time (deals have ``hs_lastmodifieddate``).
CONTACT_MODIFIED = "lastmodifieddate"


@dataclass
class Record:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False
    contacts: list[str] = field(default_factory=list)  # deals only: associated contact ids
    archived_at: str = ""

    def touch(self, stamp: str, modified: str = "hs_lastmodifieddate") -> None:
        """A change to the record: it moves its modification time (``hs_lastmodifieddate`` on
        deals, ``lastmodifieddate`` on contacts)."""
        self.properties[modified] = self.updated_at = stamp

    def archive(self, stamp: str) -> None:
        """Deleted, as HubSpot deletes: archived, gone from pages and search."""
        self.archived, self.archived_at = True, stamp

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
        if self.archived:
            body["archivedAt"] = self.archived_at
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


def home_amount(props: dict[str, str], home: str) -> None:
    """``amount_in_home_currency`` as HubSpot derives it: the amount when it is a number in the
    home currency (or names none), else none."""
    amount, currency = props.get("amount", "").strip(), props.get("deal_currency_code", home)
    if re.fullmatch(r"-?\d+(\.\d+)?", amount) and currency in ("", home):
        props["amount_in_home_currency"] = amount
    else:
        props.pop("amount_in_home_currency", None)


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
        self._order: dict[int, tuple[list[Any], list[str]]] = {}
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
        return [r for i in self._ordered(records)[1] if (r := records[i]).archived == archived]

    def page(
        self, records: Mapping[str, Record], after: str | None, limit: int, *, archived: bool = False
    ) -> tuple[list[Record], str | None]:
        """A window of id-ordered records; the cursor is the next record's id, so deletions never
        skip any. O(log n + limit) a page: re-sorting every record per page made a full pull
        quadratic."""
        keys, ids = self._ordered(records)
        at = bisect.bisect_left(keys, id_key(after)) if after else 0
        page: list[Record] = []
        while at < len(ids):
            r = records[ids[at]]
            if r.archived == archived:
                if len(page) == limit:
                    return page, r.id
                page.append(r)
            at += 1
        return page, None

    def _ordered(self, records: Mapping[str, Record]) -> tuple[list[Any], list[str]]:
        """Every id of ``records`` in id order (with its sort key), cached until one is added
        (records are archived, never removed)."""
        cached = self._order.get(id(records))
        if cached is None or len(cached[1]) != len(records):
            ids = sorted(records, key=id_key)
            cached = ([id_key(i) for i in ids], ids)
            self._order[id(records)] = cached
        return cached

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

    def add_contact(self, cid: str, props: dict[str, str], created: str, stamp: str) -> Record:
        """A contact created at ``created`` and last modified at ``stamp``, with its own
        read-only properties set as HubSpot sets them."""
        record = Record(cid, props, created, stamp)
        record.properties.update({"hs_object_id": cid, "createdate": created, "lastmodifieddate": stamp})
        self.contacts[cid] = record
        return record

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
            self.add_contact(c.id, {k: v for k, v in props.items() if v}, created, stamp)
        for p in data.purchases:
            self.add_deal(
                p.deal_id,
                [p.contact_id] if p.contact_id else [],
                amount=p.amount,
                currency=p.currency,
                closedate=_seed_time(p.closedate) or p.closedate,
                stage=STAGE_FOR_SEED.get(p.stage, p.stage),
                now=_history(p.closedate, now),
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
        home_amount(props, self.home_currency)
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


def _history(closedate: str, now: dt.datetime) -> dt.datetime:
    """When a seeded deal was created and last modified: when it closed, as in a store's history
    (never after now); all at one instant would make every incremental pull re-read them all."""
    stamp = _seed_time(closedate)
    if stamp is None:
        return now
    return min(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")), now)


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
