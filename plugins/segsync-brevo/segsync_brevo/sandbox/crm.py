"""CRM deals, pipelines, the deal attribute catalogue and eCommerce orders in the sandbox.

All of them count in the scarce hourly bucket; deal pages are at most ``deals_page_max``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import Deal, ts
from segsync_brevo.sandbox.wire import Endpoint, Routes, bad, only, page, since_arg

_DEALS_QUERY = (
    "filters[attributes.deal_name]", "filters[attributes.deal_owner]", "filters[attributes.deal_stage]",
    "filters[attributes.pipeline]", "filters[linkedCompaniesIds]", "filters[linkedContactsIds]",
    "modifiedSince", "createdSince", "offset", "limit", "sort", "sortBy",
)  # fmt: skip
#: (internalName, label, attributeTypeName, isRequired) of the deal attributes the account has.
_DEAL_ATTRIBUTES = (
    ("deal_name", "Deal name", "text", True),
    ("deal_owner", "Deal owner", "user", False),
    ("amount", "Amount", "number", False),
    ("pipeline", "Pipeline", "pipeline", False),
    ("deal_stage", "Deal stage", "stage", False),
    ("close_date", "Close date", "date", False),
    ("deal_currency", "Currency", "text", False),  # a custom attribute this account has
    ("created_at", "Created at", "date", False),
)


class CrmRoutes(Routes):
    """``/crm/deals``, ``/crm/pipeline/details/all``, ``/crm/attributes/deals`` and ``/orders``."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/v3/crm/deals", self.get_deals),
            ("GET", r"/v3/crm/pipeline/details/all", self.get_pipelines),
            ("GET", r"/v3/crm/attributes/deals", self.get_deal_attributes),
            ("GET", r"/v3/orders", self.get_orders),
        )

    def get_deals(self, req: Request, m: re.Match[str]) -> Response:
        only(req, _DEALS_QUERY)
        sort_by = req.arg("sortBy", "created_at")
        if sort_by not in ("created_at", "last_updated_date"):
            raise bad("the segsync sandbox sorts deals by created_at or last_updated_date only")
        modified = since_arg(req, "modifiedSince")
        created = since_arg(req, "createdSince")
        stage = req.arg("filters[attributes.deal_stage]")
        linked = req.arg("filters[linkedContactsIds]")

        by_update = sort_by == "last_updated_date" and self.sandbox.honour_deal_sort

        def order(deal: Deal) -> tuple[dt.datetime, str]:
            return (deal.updated if by_update else deal.created), deal.id

        deals = []
        for deal in sorted(self.account.deals.values(), key=order):
            if modified is not None and deal.updated < modified:
                continue
            if created is not None and deal.created < created:
                continue
            if stage is not None and deal.attributes.get("deal_stage") != stage:
                continue
            if linked is not None and (not linked.isdigit() or int(linked) not in deal.contacts):
                continue
            deals.append(deal)
        shown = page(req, deals, default=50, high=self.sandbox.deals_page_max)
        return Response(200, {"items": [self.account.deal_json(d) for d in shown]})

    def get_pipelines(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        stages = self.account.stages
        body = [
            {
                "pipeline": self.account.pipeline_id,
                "pipeline_name": "Sales pipeline",
                "stages": [
                    {"id": stages["open"], "name": "New"},
                    {"id": stages["won"], "name": "Won"},
                    {"id": stages["lost"], "name": "Lost"},
                ],
            }
        ]
        return Response(200, body)

    def get_deal_attributes(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        return Response(
            200,
            [
                {
                    "internalName": n,
                    "label": label,
                    "attributeTypeName": t,
                    "attributeOptions": [],
                    "isRequired": r,
                }
                for n, label, t, r in _DEAL_ATTRIBUTES
            ],
        )

    def get_orders(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("limit", "offset", "sort", "modifiedSince", "createdSince"))
        modified = since_arg(req, "modifiedSince")
        created = since_arg(req, "createdSince")
        orders = [
            o
            for o in sorted(self.account.orders.values(), key=lambda o: (o.created, o.id))
            if (modified is None or o.updated >= modified) and (created is None or o.created >= created)
        ]
        out = []
        for o in page(req, orders, default=50, high=100):
            item: dict[str, Any] = {
                "id": o.id,
                "createdAt": ts(o.created),
                "updatedAt": ts(o.updated),
                "status": o.status,
                "amount": o.amount,
                "storeId": "sandbox",
                "products": [],
            }
            contact = self.account.contacts.get(o.contact_id) if o.contact_id is not None else None
            if contact is not None:
                item["contact_id"] = contact.id
                if contact.email:
                    item["email"] = contact.email
            elif o.email:
                item["email"] = o.email
            out.append(item)
        return Response(200, {"orders": out, "count": len(orders)})
