"""Deals and contacts changed since a cursor, by CRM search, past its result cap
(crm-api-facts §1.4).

One search pages through at most ``cap`` results (10,000), and ``total`` says how many
matched. The walk asks for everything modified (or created) since the cursor; when more match than the cap,
it asks for a window of modification times narrow enough to fit, then the next window,
widening again; when more than the cap share one instant (a bulk import), it walks that
instant by ``hs_object_id`` windows the same way. It sends no sort: the official spec types
``sorts`` as strings and HubSpot sorts only by objects (HubSpot/hubspot-api-nodejs#14), so
the walk depends on no order; each window is sorted here, and windows come in time order, so
records come out in the order of the time searched on and the engine saves the pull as it goes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hubspot.crm.deals import PublicObjectSearchRequest

from segsync_hubspot import mapping
from segsync_hubspot.client import SEARCH_BUCKET, HubSpotClient

SEARCH_PAGE = 200  # search page maximum
MODIFIED = "hs_lastmodifieddate"
#: Contacts' own modification and creation times (deals have ``hs_lastmodifieddate``).
CONTACT_MODIFIED, CREATED = "lastmodifieddate", "createdate"
OBJECT_ID = "hs_object_id"
#: The first window's width: an hour of times (ms), or a million ids.
FIRST_WIDTH = {"time": 3_600_000, OBJECT_ID: 1_000_000}
#: The SDK API of each object's search.
SEARCH_APIS = {"deals": "deals_search", "contacts": "contacts_search"}

Deal = Mapping[str, Any]
Filter = dict[str, str]


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


class ChangedRecords:
    """The walk over the records of ``object`` (``deals`` or ``contacts``) whose time property
    ``stamp`` is at or after a cursor (see the module's docstring)."""

    def __init__(
        self,
        client: HubSpotClient,
        cap: int,
        properties: Sequence[str],
        *,
        object: str = "deals",
        stamp: str = MODIFIED,
    ) -> None:
        self.client = client
        self.cap = cap
        self.object = object
        self.stamp = stamp
        self.properties = list(dict.fromkeys([*properties, stamp]))

    def batches(self, since: dt.datetime, size: int) -> Iterator[list[Deal]]:
        """The records, each once, in ``stamp`` order, in batches of at most ``size``."""
        batch: list[Deal] = []
        for window in self._windows(self.stamp, _ms(since), []):
            for deal in sorted(window, key=self._order):
                batch.append(deal)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _windows(self, prop: str, lo: int, base: list[Filter]) -> Iterator[list[Deal]]:
        """Every deal with ``prop >= lo`` (and ``base``), as windows ``[lo, lo + width)`` of at
        most ``cap`` deals: narrowed while one holds more, widened again after; one instant
        that holds more is walked by id."""
        width = FIRST_WIDTH[OBJECT_ID if prop == OBJECT_ID else "time"]
        while True:
            found, total = self._query([*base, _filter(prop, "GTE", lo)])
            if total <= len(found):
                yield found  # the rest fits in one query: the last window
                return
            while True:
                found, total = self._query([*base, _filter(prop, "GTE", lo), _filter(prop, "LT", lo + width)])
                if total <= len(found):
                    yield found
                    break
                if width == 1:  # a bulk import: more than the cap share one instant
                    yield from self._windows(OBJECT_ID, 0, [*base, _filter(prop, "EQ", lo)])
                    break
                width = max(1, width // 2)
            lo += width
            width *= 2

    def stamp_of(self, record: Deal) -> dt.datetime | None:
        return mapping.parse_datetime((record.get("properties") or {}).get(self.stamp))

    def _order(self, deal: Deal) -> tuple[float, int]:
        stamp = self.stamp_of(deal)
        return (stamp.timestamp() if stamp else 0.0, int(deal["id"]))

    def _query(self, filters: list[Filter]) -> tuple[list[Deal], int]:
        """One query, paged to its end, or only its first page when more match than the cap
        lets through; the deals and how many matched."""
        found: list[Deal] = []
        after = "0"
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": filters}],
                sorts=[],  # no sort: the spec and HubSpot disagree on its form (crm-api-facts §1.4)
                properties=self.properties,
                limit=SEARCH_PAGE,
                after=after,
            )
            page = self.client.call(
                f"{self.object}.search",
                SEARCH_APIS[self.object],
                "do_search",
                public_object_search_request=request,
                bucket=SEARCH_BUCKET,
                raw=True,
            )
            found.extend(page.get("results") or ())
            total = int(page.get("total") or 0)
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or total > self.cap:
                return found, total
            after = str(nxt)


def _filter(name: str, op: str, value: int) -> Filter:
    return {"propertyName": name, "operator": op, "value": str(value)}


__all__ = ["CONTACT_MODIFIED", "CREATED", "ChangedRecords"]
