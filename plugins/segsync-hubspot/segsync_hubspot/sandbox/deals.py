"""The other side of the portal: a store integration creating and changing deals over HTTP.

``POST /crm/v3/objects/deals`` with inline ``associations``, ``PATCH`` and ``DELETE`` on
``/crm/v3/objects/deals/{id}``, and the v4 default association
``PUT /crm/v4/objects/deals/{id}/associations/default/contacts/{contactId}``, as the official
specs shape them: both ``properties`` and ``associations`` required on create, string property
values, only deal properties the portal defines and none of the read-only ones, associations
to live contacts only (deal→contact is ``HUBSPOT_DEFINED`` type 3). A changed deal moves its
``hs_lastmodifieddate``; an association made on its own does so only with
``bump_on_association`` (unconfirmed on HubSpot).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from segsync.sandbox import Request, Response
from segsync_hubspot.sandbox.account import Record, home_amount
from segsync_hubspot.sandbox.values import READ_ONLY
from segsync_hubspot.sandbox.wire import Endpoint, Routes, error, json_body

DEALS_WRITE = ("crm.objects.deals.write",)
DEAL_TO_CONTACT = 3
_DEALS = r"/crm/v3/objects/(?:deals|0-3)"


class DealRoutes(Routes):
    """Deals written by whoever sells: a store integration, a user."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("POST", _DEALS, self.create_deal, DEALS_WRITE),
            ("PATCH", _DEALS + r"/(\d+)", self.update_deal, DEALS_WRITE),
            ("DELETE", _DEALS + r"/(\d+)", self.delete_deal, DEALS_WRITE),
            (
                "PUT",
                r"/crm/v4/objects/(?:deals|0-3)/(\d+)/associations/default/(?:contacts|0-1)/(\d+)",
                self.associate,
                DEALS_WRITE,
            ),
        )

    def create_deal(self, req: Request, m: re.Match[str]) -> Response:
        body = json_body(req)
        if not isinstance(body, dict) or "properties" not in body or "associations" not in body:
            raise error(400, "a deal is created with both properties and associations (may be empty)")
        props = self._properties(body["properties"])
        contacts = [self._association(a) for a in body["associations"] or ()]
        now = self.now()
        deal_id = self.account.new_id()
        props = {**props, "hs_object_id": deal_id, "createdate": now, "hs_lastmodifieddate": now}
        home_amount(props, self.account.home_currency)
        record = Record(deal_id, props, now, now, contacts=list(dict.fromkeys(contacts)))
        self.account.deals[deal_id] = record
        self.sandbox.emit("deal.creation", deal_id, source="INTEGRATION")
        return Response(201, record.json(props))

    def update_deal(self, req: Request, m: re.Match[str]) -> Response:
        deal = self._deal(m[1])
        body = json_body(req)
        if not isinstance(body, dict) or "properties" not in body:
            raise error(400, "an update sends properties")
        changed = self._properties(body["properties"])
        deal.properties.update(changed)
        home_amount(deal.properties, self.account.home_currency)
        deal.touch(self.now())
        self.sandbox.emit_properties("deal.propertyChange", deal.id, changed, source="INTEGRATION")
        return Response(200, deal.json(deal.properties))

    def delete_deal(self, req: Request, m: re.Match[str]) -> Response:
        deal = self._deal(m[1])
        deal.archive(self.now())
        self.sandbox.emit("deal.deletion", deal.id, source="INTEGRATION")
        return Response(204)

    def associate(self, req: Request, m: re.Match[str]) -> Response:
        deal, contact_id = self._deal(m[1]), m[2]
        self._live_contact(contact_id)
        started = self.now()
        if contact_id not in deal.contacts:
            deal.contacts.append(contact_id)
            if self.sandbox.bump_on_association:
                deal.touch(self.now())
            self.sandbox.emit_association(deal.id, contact_id)
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT}
        result = {"from": {"id": deal.id}, "to": {"id": contact_id}, "associationSpec": spec}
        return self.batch([result], [], 200, started)

    # -- checks ------------------------------------------------------------------------------

    def _deal(self, deal_id: str) -> Record:
        deal = self.account.deals.get(deal_id)
        if deal is None or deal.archived:
            raise error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        return deal

    def _live_contact(self, contact_id: str) -> None:
        contact = self.account.contacts.get(contact_id)
        if contact is None or contact.archived:
            raise error(400, f"contact {contact_id} does not exist or was deleted: no association made")

    def _properties(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise error(400, "properties is an object of property names to string values")
        known = self.account.properties["deals"]
        out: dict[str, str] = {}
        for name, value in raw.items():
            if name not in known:
                raise error(400, f'Property values were not valid: property "{name}" does not exist')
            if name in READ_ONLY or name == "amount_in_home_currency":  # HubSpot computes it
                raise error(400, f'Property values were not valid: "{name}" is a read only property')
            if not isinstance(value, str):
                raise error(400, f'Property values were not valid: "{name}" takes a string')
            out[name] = value
        return out

    def _association(self, raw: Mapping[str, Any]) -> str:
        to = (raw.get("to") or {}).get("id") if isinstance(raw, dict) else None
        types = raw.get("types") if isinstance(raw, dict) else None
        wanted = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT}
        if not isinstance(types, list) or wanted not in types:
            raise error(400, "a deal-to-contact association is HUBSPOT_DEFINED type 3")
        contact_id = str(to)
        self._live_contact(contact_id)
        return contact_id


__all__ = ["DealRoutes"]
