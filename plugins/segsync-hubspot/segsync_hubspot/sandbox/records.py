"""Contacts and deals in the sandbox: GET pages, batch/update, pipelines, v4 association reads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from segsync.sandbox import Request, Response
from segsync_hubspot.sandbox.account import CONTACT_MODIFIED, Record
from segsync_hubspot.sandbox.values import InvalidValue
from segsync_hubspot.sandbox.wire import (
    ASSOCIATION_BATCH_MAX,
    BATCH_MAX,
    PAGE_MAX,
    Endpoint,
    Routes,
    batch_inputs,
    bool_arg,
    cursor_arg,
    error,
    item_error,
    json_body,
    limit_arg,
    names_arg,
    not_found,
)

CONTACT_DEFAULT_PROPERTIES = ("firstname", "lastname", "email")
DEAL_DEFAULT_PROPERTIES = ("dealname", "amount", "closedate", "pipeline", "dealstage")

# Scopes each endpoint needs (the specs' security lists, narrowed to what a private app uses).
CONTACTS_READ = ("crm.objects.contacts.read",)
CONTACTS_WRITE = ("crm.objects.contacts.write",)
DEALS_READ = ("crm.objects.deals.read",)


class RecordRoutes(Routes):
    """The portal's details, contacts, deals, pipelines and deal→contact associations."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/account-info/v3/details", self.get_account_details, ()),
            ("GET", r"/crm/v3/objects/contacts/(\d+)", self.get_contact, CONTACTS_READ),
            ("GET", r"/crm/v3/objects/contacts", self.get_contacts, CONTACTS_READ),
            ("POST", r"/crm/v3/objects/contacts/batch/update", self.update_contacts, CONTACTS_WRITE),
            ("GET", r"/crm/v3/objects/(?:deals|0-3)", self.get_deals, DEALS_READ),
            ("GET", r"/crm/v3/pipelines/([^/]+)", self.get_pipelines, DEALS_READ),
            ("POST", r"/crm/v4/associations/([^/]+)/([^/]+)/batch/read", self.read_associations, DEALS_READ),
        )

    def get_account_details(self, req: Request, m: re.Match[str]) -> Response:
        """``PortalInformationResponse``: the portal the token belongs to (any private app may ask)."""
        return Response(
            200,
            {
                "portalId": int(self.sandbox.account_id),
                "accountType": "STANDARD",
                "companyCurrency": self.account.home_currency,
                "additionalCurrencies": [],
                "timeZone": "UTC",
                "utcOffset": "+00:00",
                "utcOffsetMilliseconds": 0,
                "dataHostingLocation": "na1",
                "uiDomain": "app.hubspot.com",
            },
        )

    def _objects(
        self, req: Request, store: dict[str, Record], defaults: Sequence[str], deals: bool
    ) -> Response:
        limit = limit_arg(req, 10, PAGE_MAX)
        if req.args("propertiesWithHistory"):
            raise error(400, "propertiesWithHistory is not supported by the sandbox")
        names = names_arg(req, "properties") or list(defaults)
        with_contacts = deals and bool({"contacts", "0-1"} & set(names_arg(req, "associations")))
        archived = bool_arg(req, "archived")
        page, nxt = self.account.page(store, cursor_arg(req.arg("after")), limit, archived=archived)
        results = [r.json(names, self.account.deal_contacts(r) if with_contacts else None) for r in page]
        return Response(200, {"results": results, **self.paging(req, nxt)})

    def get_contacts(self, req: Request, m: re.Match[str]) -> Response:
        return self._objects(req, self.account.contacts, CONTACT_DEFAULT_PROPERTIES, deals=False)

    def get_contact(self, req: Request, m: re.Match[str]) -> Response:
        """One contact by id (what a store integration or a user's script reads)."""
        contact = self.account.contacts.get(m[1])
        if contact is None or contact.archived:
            raise error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        return Response(200, contact.json(names_arg(req, "properties") or list(CONTACT_DEFAULT_PROPERTIES)))

    def get_deals(self, req: Request, m: re.Match[str]) -> Response:
        return self._objects(req, self.account.deals, DEAL_DEFAULT_PROPERTIES, deals=True)

    # -- batch/update ---------------------------------------------------------------------

    @staticmethod
    def _update_ids(inputs: Sequence[Any]) -> None:
        ids: list[str] = []
        for inp in inputs:
            if (
                not isinstance(inp, dict)
                or not isinstance(inp.get("id"), str)
                or not isinstance(inp.get("properties"), dict)
            ):
                raise error(400, "Invalid input: every input needs an 'id' string and a 'properties' object")
            if "idProperty" in inp:
                raise error(400, "idProperty is not supported by the sandbox; send record ids")
            ids.append(inp["id"])
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise error(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")

    def _staged(self, values: dict[str, Any]) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
        """(stored form of each value, [(error code, property)]) for one input's properties."""
        props = self.account.properties["contacts"]
        staged: dict[str, str | None] = {}
        problems: list[tuple[str, str]] = []
        for name, raw in values.items():
            prop = props.get(name)
            if prop is None:
                problems.append(("PROPERTY_DOESNT_EXIST", name))
            elif prop.read_only:
                problems.append(("READ_ONLY_VALUE", name))
            elif not isinstance(raw, str):
                problems.append(("INVALID_TYPE", name))
            else:
                try:
                    staged[name] = prop.normalise(raw)
                except InvalidValue as exc:
                    problems.append((exc.code, name))
        return staged, problems

    def update_contacts(self, req: Request, m: re.Match[str]) -> Response:
        started = self.now()
        inputs = batch_inputs(json_body(req), BATCH_MAX)
        self._update_ids(inputs)
        accepted: list[tuple[Record, dict[str, str | None]]] = []
        errors: list[dict[str, Any]] = []
        invalid: list[str] = []
        for inp in inputs:
            contact = self.account.contacts.get(inp["id"])
            if contact is None or contact.archived:
                errors.append(not_found(inp["id"]))
                continue
            staged, problems = self._staged(inp["properties"])
            if problems:
                invalid.append(contact.id)
                errors.append(
                    item_error(
                        "VALIDATION_ERROR",
                        "Property values were not valid",
                        ids=[contact.id],
                        code=problems[0][0],
                        properties=[n for _, n in problems],
                    )
                )
                continue
            accepted.append((contact, staged))
        if invalid and self.sandbox.whole_batch_validation:
            raise error(400, "Property values were not valid", context={"ids": invalid})
        stamp = self.now()
        results: list[Any] = []
        for contact, staged in accepted:
            for name, value in staged.items():
                if value is None:
                    contact.properties.pop(name, None)
                else:
                    contact.properties[name] = value
            contact.touch(stamp, CONTACT_MODIFIED)
            # segsync's own writes come back as propertyChange events too, as on HubSpot
            self.sandbox.emit_properties("contact.propertyChange", contact.id, staged, source="INTEGRATION")
            results.append(contact.json(staged))
        return self.batch(results, errors, 200, started)

    # -- deals: pipelines and associations --------------------------------------------------

    def get_pipelines(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) not in ("deals", "0-3"):
            raise error(400, f"the sandbox has pipelines for deals only, not {m.group(1)!r}")
        return Response(200, {"results": self.account.pipelines})

    def _association(self, inp: dict[str, Any]) -> dict[str, Any]:
        """One input's answer: a result with its contacts (and paging), or a 207 error entry."""
        deal = self.account.deals.get(inp["id"])
        if deal is None or deal.archived:
            return {"error": not_found(inp["id"])}
        contacts = self.account.deal_contacts(deal)
        if not contacts:
            return {
                "error": item_error(
                    "OBJECT_NOT_FOUND",
                    f"No contacts are associated with deal {deal.id}.",
                    ids=[deal.id],
                    code="NO_ASSOCIATIONS_FOUND",
                )
            }
        size = self.sandbox.association_page_size
        offset = int(inp.get("after") or 0)
        result: dict[str, Any] = {
            "from": {"id": deal.id},
            "to": [
                {"toObjectId": c, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3}]}
                for c in contacts[offset : offset + size]
            ],
        }
        if offset + size < len(contacts):
            result["paging"] = {"next": {"after": str(offset + size)}}
        return {"result": result}

    def read_associations(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) not in ("deals", "0-3") or m.group(2) not in ("contacts", "0-1"):
            raise error(400, "the sandbox serves deal-to-contact associations only")
        started = self.now()
        inputs = batch_inputs(json_body(req), ASSOCIATION_BATCH_MAX)
        for inp in inputs:
            if not isinstance(inp, dict) or not isinstance(inp.get("id"), str):
                raise error(400, "Invalid input: every input needs an 'id' string")
            cursor_arg(inp.get("after"))
        answers = [self._association(inp) for inp in inputs]
        results = [a["result"] for a in answers if "result" in a]
        errors = [a["error"] for a in answers if "error" in a]
        return self.batch(results, errors, 200, started)
