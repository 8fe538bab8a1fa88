"""The account and its contacts in the sandbox: one contact per email, attributes checked first."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import BrevoAccount, Contact
from segsync_brevo.sandbox.wire import (
    EMAIL,
    Endpoint,
    Routes,
    bad,
    duplicate_email,
    int_value,
    missing,
    object_body,
    only,
    page,
    since_arg,
)

_CONTACT_FIELDS = {"attributes", "emailBlacklisted", "smsBlacklisted", "listIds", "unlinkListIds", "ext_id"}
_CONTACTS_QUERY = (
    "limit", "offset", "modifiedSince", "createdSince", "sort", "ids", "listIds", "segmentId", "filter",
)  # fmt: skip


def filtered_contacts(account: BrevoAccount, req: Request, ids: Iterable[int]) -> list[Contact]:
    """The contacts of ``ids`` that pass ``modifiedSince`` and ``createdSince``."""
    modified = since_arg(req, "modifiedSince")
    created = since_arg(req, "createdSince")
    out = []
    for cid in ids:
        c = account.contacts[cid]
        if modified is not None and c.modified < modified:
            continue
        if created is not None and c.created < created:
            continue
        out.append(c)
    return out


class ContactRoutes(Routes):
    """``GET /account`` and the contact endpoints (list, get, create, update, delete)."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/v3/account", self.get_account),
            ("GET", r"/v3/contacts", self.get_contacts),
            ("POST", r"/v3/contacts", self.create_contact),
        )

    def endpoints_by_identifier(self) -> Iterable[Endpoint]:
        """Routes on ``/contacts/{identifier}``: after every more specific ``/contacts/...`` route."""
        return (
            ("GET", r"/v3/contacts/(?P<ident>.+)", self.get_contact),
            ("PUT", r"/v3/contacts/(?P<ident>.+)", self.update_contact),
            ("DELETE", r"/v3/contacts/(?P<ident>.+)", self.remove_contact),
        )

    def get_account(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        account_id = self.sandbox.account_id
        return Response(
            200,
            {
                "organization_id": account_id,
                "user_id": int(account_id[:6], 16),
                "enterprise": False,
                "email": "owner@example.com",
                "firstName": "Sandbox",
                "lastName": "Owner",
                "companyName": "segsync sandbox",
                "address": {
                    "street": "1 Loopback Way",
                    "city": "Localhost",
                    "zipCode": "00000",
                    "country": "FR",
                },
                "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
                "relay": {
                    "enabled": False,
                    "data": {"userName": "owner@example.com", "relay": "smtp-relay.example.com", "port": 587},
                },
            },
        )

    def get_contacts(self, req: Request, m: re.Match[str]) -> Response:
        only(req, _CONTACTS_QUERY)
        if req.arg("segmentId") is not None or req.arg("filter") is not None:
            raise bad("segmentId and filter are not emulated by the segsync sandbox")
        ids = self.account.order
        if req.args("ids"):
            wanted = [int_value(v, "ids") for v in req.args("ids")]
            if len(wanted) > 20:
                raise bad("ids accepts at most 20 contact ids", "out_of_range")
            chosen = set(wanted)
            ids = [i for i in ids if i in chosen]
        if req.args("listIds"):
            lists = {int_value(v, "listIds") for v in req.args("listIds")}
            ids = [i for i in ids if self.account.contacts[i].lists & lists]
        if req.arg("modifiedSince") is None and req.arg("createdSince") is None:
            # every contact: page the id order as it is (a copy and a scan per page made each
            # request cost O(contacts))
            shown = [self.account.contacts[i] for i in page(req, ids, default=50, high=1000)]
            return Response(
                200, {"contacts": [self.account.contact_json(c) for c in shown], "count": len(ids)}
            )
        matching = filtered_contacts(self.account, req, ids)
        shown = page(req, matching, default=50, high=1000)
        return Response(
            200, {"contacts": [self.account.contact_json(c) for c in shown], "count": len(matching)}
        )

    def _identify(self, req: Request, ident: str) -> Contact:
        kind = req.arg("identifierType")
        if kind not in (None, "email_id", "contact_id"):
            raise bad(f"identifierType {kind} is not emulated by the segsync sandbox")
        contact: Contact | None
        if kind == "contact_id" or (kind is None and ident.isdigit()):
            if not ident.isdigit():
                raise bad("a contact_id identifier must be an integer")
            contact = self.account.contacts.get(int(ident))
        elif kind == "email_id" or "@" in ident:
            contact = self.account.by_email(ident)
        else:
            raise bad("identifier must be an email address or a contact id")
        if contact is None:
            raise missing("Contact")
        return contact

    def get_contact(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("identifierType", "startDate", "endDate"))
        contact = self._identify(req, m["ident"])
        return Response(200, {**self.account.contact_json(contact), "statistics": {}})

    def create_contact(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        body = object_body(req)
        names = self._contact_body(body, {"email", "updateEnabled", "smtpBlacklistSender"})
        names.pop("EMAIL", None)
        email = body.get("email")
        if not isinstance(email, str) or not EMAIL.fullmatch(email):
            raise bad("email must be an email address (the segsync sandbox creates contacts by email)")
        existing = self.account.by_email(email)
        if existing is None:
            contact = self.account.new_contact(email)
        elif body.get("updateEnabled"):
            contact = existing
        else:
            raise duplicate_email("create")
        self._apply_contact(contact, names, body)
        return Response(201, {"id": contact.id}) if existing is None else Response(204)

    def update_contact(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("identifierType",))
        contact = self._identify(req, m["ident"])
        body = object_body(req)
        names = self._contact_body(body, set())
        email = names.pop("EMAIL", None)  # the spec's way to change a contact's email
        if email is not None:
            if not isinstance(email, str) or not EMAIL.fullmatch(email):
                raise bad("EMAIL must be an email address")
            if self.account.emails.get(email.casefold(), contact.id) != contact.id:
                raise duplicate_email("update")
        self._apply_contact(contact, names, body)
        if email is not None:
            self.account.set_email(contact, email)
        return Response(204)

    def _contact_body(self, body: dict[str, Any], extra: set[str]) -> dict[str, Any]:
        """The attributes a create or update sets, upper-cased; unknown fields, attributes and
        lists are refused before anything changes."""
        unknown = set(body) - _CONTACT_FIELDS - extra
        if unknown:
            raise bad(f"unknown body field {sorted(unknown)[0]}")
        values = body.get("attributes") or {}
        if not isinstance(values, dict):
            raise bad("attributes must be an object")
        names = {k.upper(): v for k, v in values.items()}
        absent = sorted(n for n in names if n not in self.account.attributes and n != "EMAIL")
        if absent:
            raise bad(f"attribute {absent[0]} does not exist in this account")
        lists = self.account.lists
        if any(lid not in lists for key in ("listIds", "unlinkListIds") for lid in body.get(key) or ()):
            raise missing("List ID")
        return names

    def _apply_contact(self, contact: Contact, names: dict[str, Any], body: dict[str, Any]) -> None:
        for name, value in names.items():
            # An empty string clears (unconfirmed on Brevo; segsync reads clears back).
            self.account.set_attribute(contact, self.account.attributes[name], value, erase=True)
        for key, add in (("listIds", True), ("unlinkListIds", False)):
            for lid in body.get(key) or ():
                self.account.join(contact, lid, add=add)
        self.account.touch(contact)
        self.sandbox.emit("contact_updated", contact)

    def remove_contact(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("identifierType",))
        contact = self._identify(req, m["ident"])
        self.account.delete_contact(contact.id)
        self.sandbox.emit("contact_deleted", contact)
        return Response(204)
