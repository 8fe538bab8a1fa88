"""Pulls from HubSpot: contacts and closed-won deals with their contacts, page by page.

Contacts and deals are read in GET pages of 100 (crm-api-facts §1.12) following
``paging.next.after``; deal→contact associations with the v4 batch read, 1000 deals a call,
plus one more input per deal whose contacts overflow a page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from segsync import (
    Contact,
    ContactGone,
    CursorPaging,
    FieldSpec,
    PageGuard,
    PullProgress,
    Purchase,
    PurchaseRetracted,
    Rejection,
    after_token,
)
from segsync_hubspot import mapping
from segsync_hubspot.client import PLATFORM, HubSpotClient
from segsync_hubspot.config import HubSpotSettings
from segsync_hubspot.search import CONTACT_MODIFIED, CREATED, ChangedRecords

PAGE_SIZE = 100  # GET page maximum for CRM objects
ASSOCIATION_BATCH = 1000  # v4 association batch read maximum (since 2025-02-10)


def pages(operation: str, fetch: Callable[[str | None], Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Follow ``paging.next.after`` until it is absent, with segsync's loop guards."""
    return CursorPaging(PLATFORM, operation, vendor="HubSpot").pages(fetch)


def _contact_names(properties: Sequence[str], managed: Sequence[FieldSpec]) -> list[str]:
    return list(dict.fromkeys(["email", *properties, *(spec.key for spec in managed)]))


class Pulls:
    """Contacts and purchases of one portal."""

    def __init__(self, settings: HubSpotSettings, client: HubSpotClient) -> None:
        self.settings = settings
        self.client = client
        #: The newest change among the contacts the last contact pull yielded.
        self.contacts_newest: dt.datetime | None = None

    def _newest(self, stamp: dt.datetime | None) -> None:
        if stamp is not None and (self.contacts_newest is None or stamp > self.contacts_newest):
            self.contacts_newest = stamp

    def contacts(
        self,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
    ) -> Iterator[Contact | Rejection]:
        names = _contact_names(properties, managed)
        self.contacts_newest = None

        def fetch(after: str | None) -> Mapping[str, Any]:
            kw: dict[str, Any] = {"limit": PAGE_SIZE, "properties": names, "archived": False}
            if after:
                kw["after"] = after
            return self.client.call("contacts.list", "contacts", "get_page", **kw, raw=True)  # type: ignore[no-any-return]

        for page in pages("contacts.list", fetch):
            for record in page.get("results") or ():
                if not record.get("archived"):
                    self._newest(mapping.parse_datetime(record.get("updatedAt")))
                    yield mapping.contact_from_record(record, properties, managed)

    def changed_contacts(
        self, since: dt.datetime, properties: Sequence[str], managed: Sequence[FieldSpec], *, reread: bool
    ) -> Iterator[Contact | ContactGone | Rejection]:
        """Contacts created since ``since`` (with ``reread``, modified since), by CRM search,
        then those archived since."""
        self.contacts_newest = None
        stamp = CONTACT_MODIFIED if reread else CREATED
        walk = ChangedRecords(
            self.client,
            self.settings.search_result_cap,
            _contact_names(properties, managed),
            object="contacts",
            stamp=stamp,
        )
        for batch in walk.batches(since, PAGE_SIZE):
            for record in batch:
                self._newest(walk.stamp_of(record))
                yield mapping.contact_from_record(record, properties, managed)
        yield from (ContactGone(id=i) for i in self._archived_since("contacts", since))

    def purchases(
        self, since: dt.datetime | None
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection | PullProgress]:
        """Closed-won deals, one purchase per associated contact.

        Without ``since`` (or with the ``incremental`` setting off), every deal, in GET pages.
        With it, the deals changed since then (:mod:`segsync_hubspot.search`): won ones as
        purchases, the others retracted, then every deal archived since then retracted.
        """
        pipelines = self.client.call("pipelines.list", "pipelines", "get_all", "deals")
        won = mapping.won_stage_ids(pipelines.get("results") or (), self.settings.deal_pipelines)
        if since is not None and self.settings.incremental:
            yield from self._changed(since, won)
            return

        def fetch(after: str | None) -> Mapping[str, Any]:
            kw: dict[str, Any] = {
                "limit": PAGE_SIZE,
                "properties": list(mapping.DEAL_PROPERTIES),
                "archived": False,
            }
            if after:
                kw["after"] = after
            return self.client.call("deals.list", "deals", "get_page", **kw, raw=True)  # type: ignore[no-any-return]

        pending: list[Mapping[str, Any]] = []
        for page in pages("deals.list", fetch):
            for deal in page.get("results") or ():
                if str((deal.get("properties") or {}).get("dealstage")) in won and not deal.get("archived"):
                    pending.append(deal)
            if len(pending) >= ASSOCIATION_BATCH:
                yield from self._purchases(pending[:ASSOCIATION_BATCH])
                del pending[:ASSOCIATION_BATCH]
        if pending:
            yield from self._purchases(pending)

    def _changed(
        self, since: dt.datetime, won: frozenset[str]
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection | PullProgress]:
        changed = ChangedRecords(self.client, self.settings.search_result_cap, list(mapping.DEAL_PROPERTIES))
        for batch in changed.batches(since, ASSOCIATION_BATCH):
            keep = [d for d in batch if str((d.get("properties") or {}).get("dealstage")) in won]
            kept = {str(d["id"]) for d in keep}
            # a batch is in modification order: retractions and purchases stay in it
            yield from (PurchaseRetracted(id=str(d["id"])) for d in batch if str(d["id"]) not in kept)
            if keep:
                yield from self._purchases(keep)
            # the cursor may pass this batch's open, lost and rejected deals too: without the
            # watermark every pull read again each one modified after the newest purchase
            stamps = [s for s in map(changed.stamp_of, batch) if s is not None]
            if stamps:
                yield PullProgress(modified_at=max(stamps))
        yield from (PurchaseRetracted(id=i) for i in self._archived_since("deals", since))

    def _archived_since(self, kind: str, since: dt.datetime) -> Iterator[str]:
        """Ids of ``kind`` (deals, contacts) archived (deleted) since ``since``: the archived
        listing, read whole (it has no filter), kept to those archived after the cursor."""

        def fetch(after: str | None) -> Mapping[str, Any]:
            kw: dict[str, Any] = {"limit": PAGE_SIZE, "properties": ["hs_object_id"], "archived": True}
            if after:
                kw["after"] = after
            return self.client.call(f"{kind}.archived", kind, "get_page", **kw, raw=True)  # type: ignore[no-any-return]

        for page in pages(f"{kind}.archived", fetch):
            for deal in page.get("results") or ():
                stamp = mapping.parse_datetime(deal.get("archivedAt"))
                if stamp is None or stamp >= since:
                    yield str(deal["id"])

    def _purchases(self, deals: Sequence[Mapping[str, Any]]) -> Iterator[Purchase | Rejection]:
        contacts = self._deal_contacts([str(d["id"]) for d in deals])
        for deal in deals:
            # A deal absent from the association answer has no contacts (or was deleted meanwhile).
            result = mapping.deal_purchases(
                deal, contacts.get(str(deal["id"]), ()), self.settings.home_currency
            )
            if isinstance(result, Rejection):
                yield result
            else:
                yield from result

    def _deal_contacts(self, deal_ids: Sequence[str]) -> dict[str, list[str]]:
        """Contact ids per deal via v4 batch reads, following each input's own paging."""
        found: dict[str, list[str]] = {}
        queue: list[dict[str, str]] = [{"id": i} for i in deal_ids]
        guard = PageGuard(PLATFORM, "associations.read", vendor="HubSpot")
        while queue:
            inputs, queue = queue[:ASSOCIATION_BATCH], queue[ASSOCIATION_BATCH:]
            guard.request()
            answer = self.client.call(
                "associations.read",
                "associations",
                "get_page",
                "deals",
                "contacts",
                {"inputs": inputs},
                ok=(200, 207),
                raw=True,
            )
            for result in answer.get("results") or ():
                deal_id = str((result.get("from") or {}).get("id"))
                ids = found.setdefault(deal_id, [])
                ids.extend(str(t["toObjectId"]) for t in result.get("to") or ())
                after = after_token(result)
                if after:
                    guard.cursor(after, scope=deal_id)  # each deal pages its contacts on its own
                    queue.append({"id": deal_id, "after": after})
            # Deals without contacts and deleted deals come back as 207 errors, not results.
        return found
