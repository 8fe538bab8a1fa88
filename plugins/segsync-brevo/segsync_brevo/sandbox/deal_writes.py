"""The other side of the account: a store or a user creating and changing deals over HTTP.

``POST /v3/crm/deals``, ``PATCH`` and ``DELETE /v3/crm/deals/{id}`` and
``PATCH /v3/crm/deals/link-unlink/{id}``, as the official spec shapes them: a ``name`` is
required, ``attributes`` must be deal attributes the account has, ``deal_stage`` a stage id of
its pipeline, and linked contacts must exist. Every change moves ``last_updated_date``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import Deal, ts
from segsync_brevo.sandbox.wire import Endpoint, Routes, bad, missing, object_body, only

_WRITABLE = ("deal_owner", "amount", "pipeline", "deal_stage", "close_date", "deal_currency")


class DealWriteRoutes(Routes):
    """Deals written by whoever sells."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("POST", r"/v3/crm/deals", self.create_deal),
            ("PATCH", r"/v3/crm/deals/link-unlink/(?P<deal>[^/]+)", self.link_unlink),
            ("PATCH", r"/v3/crm/deals/(?P<deal>[^/]+)", self.update_deal),
            ("DELETE", r"/v3/crm/deals/(?P<deal>[^/]+)", self.delete_deal),
        )

    def create_deal(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        body = object_body(req)
        unknown = set(body) - {"name", "attributes", "linkedContactsIds", "linkedCompaniesIds"}
        name = body.get("name")
        if unknown or not isinstance(name, str) or not name.strip():
            raise bad("a deal needs a name (and may have attributes, linkedContactsIds)", "missing_parameter")
        attrs = self._attributes(body.get("attributes") or {})
        contacts = self._contacts(body.get("linkedContactsIds") or [])
        account = self.account
        deal_id = account.new_deal_id()
        now = account.now()
        stamp = ts(now)
        attrs = {
            "deal_name": name,
            "pipeline": account.pipeline_id,
            "deal_stage": account.stages["open"],
            **attrs,
            "created_at": stamp,
            "last_updated_date": stamp,
            "stage_updated_at": stamp,
        }
        account.deals[deal_id] = Deal(deal_id, attrs, contacts, now, now)
        return Response(201, {"id": deal_id})

    def update_deal(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        deal = self._deal(m)
        body = object_body(req)
        if set(body) - {"name", "attributes"}:
            raise bad("an update sends name and attributes only")
        attrs = self._attributes(body.get("attributes") or {})
        if "name" in body:
            attrs["deal_name"] = str(body["name"])
        if "deal_stage" in attrs and attrs["deal_stage"] != deal.attributes.get("deal_stage"):
            attrs["stage_updated_at"] = ts(self.account.now())
        deal.attributes.update(attrs)
        self._touch(deal)
        return Response(204)

    def link_unlink(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        deal = self._deal(m)
        body = object_body(req)
        if set(body) - {"linkContactIds", "unlinkContactIds", "linkCompanyIds", "unlinkCompanyIds"}:
            raise bad("link-unlink takes linkContactIds, unlinkContactIds and company ids")
        for contact in self._contacts(body.get("linkContactIds") or []):
            if contact not in deal.contacts:
                deal.contacts.append(contact)
        gone = set(self._ids(body.get("unlinkContactIds") or []))
        deal.contacts = [c for c in deal.contacts if c not in gone]
        self._touch(deal)
        return Response(204)

    def delete_deal(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        deal = self._deal(m)
        del self.account.deals[deal.id]
        return Response(204)

    # -- checks ------------------------------------------------------------------------------

    def _deal(self, m: re.Match[str]) -> Deal:
        deal = self.account.deals.get(m["deal"])
        if deal is None:
            raise missing("Deal")
        return deal

    def _touch(self, deal: Deal) -> None:
        deal.updated = self.account.now()
        deal.attributes["last_updated_date"] = ts(deal.updated)
        deal.attributes["number_of_contacts"] = len(deal.contacts)

    def _attributes(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise bad("attributes is an object")
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _WRITABLE:
                raise bad(f"attribute {key} does not exist for deals or cannot be written")
            if key == "deal_stage" and value not in self.account.stages.values():
                raise bad(f"deal_stage {value!r} is not a stage of the pipeline")
            if key == "close_date":
                value = self._date(value)
            out[key] = value
        return out

    @staticmethod
    def _date(value: Any) -> str:
        try:
            when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise bad(f"close_date {value!r} is not a date") from None
        return ts(when if when.tzinfo else when.replace(tzinfo=dt.UTC))

    @staticmethod
    def _ids(raw: Any) -> list[int]:
        if not isinstance(raw, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise bad("contact ids are integers")
        return list(raw)

    def _contacts(self, raw: Any) -> list[int]:
        ids = self._ids(raw)
        absent = [i for i in ids if i not in self.account.contacts]
        if absent:
            raise bad(f"contact {absent[0]} does not exist")
        return list(dict.fromkeys(ids))


__all__ = ["DealWriteRoutes"]
