"""The emulated Brevo account: contacts (one per email), attributes, folders, lists, deals, orders.

It holds the account's state and Brevo's data rules (what a value of the wrong type leaves,
how a category attribute shows) and renders objects in the API's JSON shapes. HTTP concerns
live in :mod:`.server` and the handler modules; imports and their processes in :mod:`.imports`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segsync_brevo.config import BrevoSettings
from segsync_brevo.mapping import text_of, to_decimal

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DEFAULTS = BrevoSettings()
#: Attributes every seeded account has (Brevo's defaults plus the seed columns).
SEED_ATTRIBUTES = {
    "FIRSTNAME": "text",
    "LASTNAME": "text",
    "SMS": "text",
    "COUNTRY": "text",
    "CITY": "text",
    "AGE": "float",
    "JOB_TITLE": "text",
    "COMPANY_SIZE": "text",
}
ORDER_STATUS = {"won": "completed", "lost": "cancelled", "open": "pending"}


def ts(moment: dt.datetime) -> str:
    """Brevo's timestamp format: milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Contact:
    id: int
    email: str | None
    attributes: dict[str, Any]
    created: dt.datetime
    modified: dt.datetime
    lists: set[int] = field(default_factory=set)


@dataclass
class Attribute:
    name: str
    category: str
    type: str | None
    enumeration: list[dict[str, Any]] | None = None
    managed: bool = True  # created through the API (segsync's), not seeded


@dataclass
class ContactList:
    id: int
    name: str
    folder_id: int
    created: dt.datetime


@dataclass
class Deal:
    id: str
    attributes: dict[str, Any]
    contacts: list[int]
    created: dt.datetime
    updated: dt.datetime  # last_updated_date, kept parsed for sorting and filtering


@dataclass
class Order:
    id: str
    contact_id: int | None
    amount: Any
    status: str
    created: dt.datetime
    updated: dt.datetime
    email: str | None = None  # orders a shop sent with an email only


class BrevoAccount:
    """One emulated account. Callers hold the server lock; ``now`` is the account's wall time."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        self.now = now
        self.contacts: dict[int, Contact] = {}
        self.order: list[int] = []  # contact ids by creation
        self.emails: dict[str, int] = {}  # case-folded email -> contact id
        self.attributes: dict[str, Attribute] = {
            name: Attribute(name, "normal", kind, managed=False) for name, kind in SEED_ATTRIBUTES.items()
        }
        self.folders: dict[int, str] = {}
        self.lists: dict[int, ContactList] = {}
        self.members: dict[int, set[int]] = {}
        self.deals: dict[str, Deal] = {}
        self.orders: dict[str, Order] = {}
        self.pipeline_id = "64f0c0ffee0000000000a001"
        self.stages = {"open": "stage-new", "won": "stage-won", "lost": "stage-lost"}
        self.next = {"contact": 1, "folder": 1, "list": 1, "process": 1, "deal": 1}

    def take(self, kind: str) -> int:
        """The next id of a kind (folder, list, process, deal number)."""
        number = self.next[kind]
        self.next[kind] += 1
        return number

    # -- contacts ---------------------------------------------------------------------------

    def add_contact(
        self, cid: int, email: str | None, attrs: dict[str, Any], created: dt.datetime
    ) -> Contact:
        if email and email.casefold() in self.emails:  # requests are refused before this
            raise ValueError(
                f"Brevo keeps one contact per email; contact {self.emails[email.casefold()]} has it"
            )
        contact = Contact(cid, email, attrs, created, created)
        self.contacts[cid] = contact
        self.order.append(cid)
        if email:
            self.emails[email.casefold()] = cid
        self.next["contact"] = max(self.next["contact"], cid + 1)
        return contact

    def new_contact(self, email: str | None, attrs: dict[str, Any] | None = None) -> Contact:
        return self.add_contact(self.next["contact"], email, dict(attrs or {}), self.now())

    def by_email(self, email: str) -> Contact | None:
        cid = self.emails.get(email.casefold())
        return self.contacts.get(cid) if cid is not None else None

    def set_email(self, contact: Contact, email: str) -> None:
        if contact.email:
            self.emails.pop(contact.email.casefold(), None)
        contact.email = email
        self.emails[email.casefold()] = contact.id

    def delete_contact(self, cid: int) -> None:
        contact = self.contacts.pop(cid)
        self.order.remove(cid)
        if contact.email:
            self.emails.pop(contact.email.casefold(), None)
        for lid in contact.lists:
            self.members[lid].discard(cid)
        for deal in self.deals.values():
            if cid in deal.contacts:
                deal.contacts.remove(cid)

    def touch(self, contact: Contact) -> None:
        contact.modified = self.now()

    def join(self, contact: Contact, lid: int, *, add: bool = True) -> None:
        """Put a contact in a list (or take it out), both ways round."""
        if add:
            self.members[lid].add(contact.id)
            contact.lists.add(lid)
        else:
            self.members[lid].discard(contact.id)
            contact.lists.discard(lid)

    # -- lists ------------------------------------------------------------------------------

    def new_folder(self, name: str) -> int:
        fid = self.take("folder")
        self.folders[fid] = name
        return fid

    def new_list(self, name: str, folder: int) -> int:
        lid = self.take("list")
        self.lists[lid] = ContactList(lid, name, folder, self.now())
        self.members[lid] = set()
        return lid

    def delete_list(self, lid: int) -> None:
        self.lists.pop(lid)
        now = self.now()
        for cid in self.members.pop(lid):
            contact = self.contacts[cid]
            contact.lists.discard(lid)
            contact.modified = now

    # -- deals and orders -------------------------------------------------------------------

    def new_deal_id(self) -> str:
        """A new deal id: 24 hex digits, like Brevo's object ids."""
        return f"{0x64F0 << 80 | self.take('deal'):024x}"

    def add_deal(
        self,
        deal_id: str | None,
        contact: int | None,
        amount: str,
        closed: dt.datetime | None,
        stage: str,
        *,
        created: dt.datetime | None = None,
    ) -> str:
        """A deal (and the matching eCommerce order, same id); new ones get Brevo-like ids."""
        new_id = self.new_deal_id()  # taken even for a seeded id: ids stay as they were
        deal_id = deal_id or new_id
        if deal_id in self.deals:
            raise ValueError(f"deal id {deal_id!r} appears twice")
        created = created or self.now()
        attrs: dict[str, Any] = {
            "deal_name": f"Order {deal_id}",
            "pipeline": self.pipeline_id,
            "deal_stage": self.stages[stage],
            "created_at": ts(created),
            "last_updated_date": ts(created),
            "stage_updated_at": ts(created),
        }
        if amount:
            number_amount = to_decimal(amount)
            attrs["amount"] = float(number_amount) if number_amount is not None else amount
        if closed is not None:
            attrs["close_date"] = ts(closed)
        # No contact, or one not in the account: served with no linked contact, as Brevo does.
        linked = [contact] if contact is not None and contact in self.contacts else []
        attrs["number_of_contacts"] = len(linked)
        self.deals[deal_id] = Deal(deal_id, attrs, linked, created, created)
        amount_value = attrs.get("amount")
        self.orders[deal_id] = Order(
            deal_id, linked[0] if linked else None, amount_value, ORDER_STATUS[stage], created, created
        )
        return deal_id

    def set_deal_stage(self, deal_id: str, stage: str) -> None:
        deal = self.deals[deal_id]
        deal.updated = self.now()
        now = ts(deal.updated)
        deal.attributes.update(deal_stage=self.stages[stage], stage_updated_at=now, last_updated_date=now)
        order = self.orders.get(deal_id)
        if order is not None:
            order.status = ORDER_STATUS[stage]
            order.updated = self.now()

    # -- values -----------------------------------------------------------------------------

    @staticmethod
    def coerce(attr: Attribute, value: Any) -> tuple[bool, Any]:
        """(applies, stored value): what Brevo keeps of a value; wrong types are ignored."""
        if attr.category == "category":
            codes = {e["value"] for e in attr.enumeration or ()}
            ok = isinstance(value, int) and not isinstance(value, bool) and value in codes
            return ok, value
        if attr.type == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return ok, float(value) if ok else None
        if attr.type == "date":
            ok = isinstance(value, str) and bool(_DATE.fullmatch(value))
            return ok, value
        if attr.type == "boolean":
            return isinstance(value, bool), value
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        return ok, str(value) if ok else None

    def set_attribute(self, contact: Contact, attr: Attribute, value: Any, *, erase: bool) -> None:
        """Store one value as Brevo would: empty clears (when erasing), wrong types are ignored."""
        if value is None or value == "":
            if erase:
                contact.attributes.pop(attr.name, None)
            return
        ok, stored = self.coerce(attr, value)
        if ok:
            contact.attributes[attr.name] = stored

    @staticmethod
    def display(attr: Attribute, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if attr.category == "category":
            labels = {e["value"]: e["label"] for e in attr.enumeration or ()}
            return str(labels.get(value, value))
        return text_of(value)

    # -- JSON shapes ------------------------------------------------------------------------

    @staticmethod
    def contact_json(c: Contact) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id,
            "emailBlacklisted": False,
            "smsBlacklisted": False,
            "createdAt": ts(c.created),
            "modifiedAt": ts(c.modified),
            "listIds": sorted(c.lists),
            "attributes": dict(c.attributes),
        }
        if c.email:
            out["email"] = c.email
        return out

    def list_json(self, lst: ContactList, *, folder: bool) -> dict[str, Any]:
        size = len(self.members[lst.id])
        out: dict[str, Any] = {
            "id": lst.id,
            "name": lst.name,
            "totalBlacklisted": 0,
            "totalSubscribers": size,
            "uniqueSubscribers": size,
        }
        if folder:
            out["folderId"] = lst.folder_id
        return out

    @staticmethod
    def deal_json(deal: Deal) -> dict[str, Any]:
        return {
            "id": deal.id,
            "attributes": dict(deal.attributes) | {"number_of_contacts": len(deal.contacts)},
            "linkedContactsIds": list(deal.contacts),
            "linkedCompaniesIds": [],
        }

    def snapshot(self) -> dict[str, object]:
        """segsync's attributes and lists (``Sandbox.snapshot``); call after imports settled."""
        managed = {n: a for n, a in self.attributes.items() if a.managed}
        fields: dict[str, dict[str, str]] = {}
        for c in self.contacts.values():
            values = {}
            for name, attr in managed.items():
                shown = self.display(attr, c.attributes.get(name))
                if shown is not None:
                    values[name.lower()] = shown
            if values:
                fields[str(c.id)] = values
        segsync_lists = [
            lst
            for lst in self.lists.values()
            if self.folders.get(lst.folder_id) == _DEFAULTS.folder_name
            and lst.name != _DEFAULTS.import_list_name
        ]
        return {
            "fields": fields,
            "lists": {lst.name: sorted(str(i) for i in self.members[lst.id]) for lst in segsync_lists},
            "field_defs": sorted(n.lower() for n in managed),
            "list_names": sorted(lst.name for lst in segsync_lists),
        }
