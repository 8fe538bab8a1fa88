"""The HubSpot sandbox's facade: the emulated portal, its options, and the actions of its users.

Tests and the demo act "behind segsync's back" through it (a purchase, a deleted contact, a
list renamed in HubSpot); the HTTP side is :mod:`.server`, the portal's state :mod:`.account`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from segsync import Clock
from segsync.sandbox import FaultPlan, SandboxBase, SeedData, SeedRules
from segsync_hubspot.sandbox.account import (
    CONTACT_MODIFIED,
    HOME_PIPELINE,
    SEED_RULES,
    Account,
    HubList,
    home_amount,
)
from segsync_hubspot.sandbox.server import DAY, TEN_SECONDS, HubSpotServer
from segsync_hubspot.sandbox.values import Property, check_options, iso, stored_options
from segsync_hubspot.webhooks import signature_v3

#: A subscription id per event type, as an app's webhook settings number them.
_SUBSCRIPTIONS = {
    kind: 1000 + n
    for n, kind in enumerate(
        f"{obj}.{what}"
        for obj in ("contact", "deal")
        for what in ("creation", "propertyChange", "deletion", "associationChange", "merge", "restore")
    )
}


class HubSpotSandbox(SandboxBase):
    """The emulated portal, its HTTP server, and the "behind segsync's back" actions tests need.

    Extra keywords beyond the :class:`segsync.sandbox.Sandbox` protocol tune strictness:
    ``rate_limit`` (requests per 10 s, default 190), ``daily_limit``, ``scopes`` (None grants
    all; a set makes other calls answer 403 MISSING_SCOPES), ``retry_after_header`` (HubSpot's
    429s are not documented to carry Retry-After, so off by default), ``association_page_size``
    (contacts per deal per association page), ``membership_max`` (ids per add-and-remove; the
    real cap is not documented), ``whole_batch_validation`` (refuse a whole batch/update with
    400 when one input has a bad value, instead of a 207: which HubSpot does is not documented),
    ``account_id`` (the portal id; by default derived from the token), ``wall_clock`` (by
    default the wall time follows ``clock``). Webhooks: ``webhook_url`` and ``app_secret`` make
    it send an app's deal and contact events there, v3-signed (or :meth:`subscribe_webhooks`
    later); ``webhook_properties`` limits contact propertyChange events to those properties.
    """

    platform: ClassVar[str] = "hubspot"
    seed_rules: ClassVar[SeedRules] = SEED_RULES
    server_class = HubSpotServer

    #: Per-app limits by subscription (crm-api-facts §1.10).
    plans: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "free": {"rate_limit": 100, "daily_limit": 250_000},
        "starter": {"rate_limit": 100, "daily_limit": 250_000},
        "professional": {"rate_limit": 190, "daily_limit": 625_000},
        "enterprise": {"rate_limit": 190, "daily_limit": 1_000_000},
    }

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        rate_limit: int = 190,
        daily_limit: int = 625_000,
        scopes: Iterable[str] | None = None,
        retry_after_header: bool = False,
        association_page_size: int = 100,
        membership_max: int = 1000,
        whole_batch_validation: bool = False,
        home_currency: str = "USD",
        managed_group: str = "segsync",
        wall_clock: Callable[[], dt.datetime] | None = None,
        account_id: str | None = None,
        search_per_second: int = 4,
        search_cap: int = 10_000,
        bump_on_association: bool = False,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        app_id: int = 4_242_424,
        webhook_properties: Iterable[str] | str | None = None,
    ) -> None:
        self.rate_limit = rate_limit
        self.search_per_second = search_per_second
        self.search_cap = search_cap
        self.bump_on_association = bump_on_association
        self.daily_limit = daily_limit
        self.scopes: frozenset[str] | None = frozenset(scopes) if scopes is not None else None
        self.association_page_size = association_page_size
        self.membership_max = membership_max
        self.whole_batch_validation = whole_batch_validation
        self.account = Account(home_currency=home_currency, managed_group=managed_group)
        super().__init__(
            secret=secret,
            port=port,
            traffic_log=traffic_log,
            faults=faults,
            clock=clock,
            account_id=account_id,
            wall_clock=wall_clock,
        )
        self.retry_after_on_429 = retry_after_header
        self.app_id = app_id
        #: Contact properties with a propertyChange subscription; None: every one, segsync's
        #: own included (the pessimistic reading: serve must ignore its own writes coming back).
        if isinstance(webhook_properties, str):  # --option webhook_properties=country,age
            webhook_properties = [n.strip() for n in webhook_properties.split(",") if n.strip()]
        self.webhook_properties = None if webhook_properties is None else frozenset(webhook_properties)
        self._event_ids = itertools.count(1)
        self.app_secret = ""
        if webhook_url:
            self.subscribe_webhooks(webhook_url, app_secret or "")

    def subscribe_webhooks(self, url: str, app_secret: str) -> None:
        """Send webhooks to ``url``, signed with ``app_secret`` (the app's client secret), as
        an app's webhook subscription for contact and deal events does."""
        if not app_secret:
            raise ValueError("webhooks need app_secret, the app client secret that signs them")
        self.app_secret = app_secret
        self.send_webhooks(url, self._sign, batch=100)

    # -- webhooks, as a HubSpot app receives them ----------------------------------------------

    def _sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time() * 1000))  # signed at send time, by the real clock
        return {
            "X-HubSpot-Signature-v3": signature_v3(self.app_secret, method, url, body, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Timeout-Millis": "10000",
        }

    def emit(self, kind: str, object_id: str, *, source: str = "CRM_UI", **extra: Any) -> None:
        """Queue the webhook event HubSpot sends for a change (nothing without ``webhook_url``)."""
        if self.webhooks is None:
            return
        event = {
            "eventId": next(self._event_ids),
            "subscriptionId": _SUBSCRIPTIONS.get(kind, 999),
            "portalId": int(self.account_id),
            "appId": self.app_id,
            "occurredAt": int(self.now().timestamp() * 1000),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeFlag": kind.rpartition(".")[2].upper(),
            "changeSource": source,
            **extra,
        }
        self.webhooks.emit(event)

    def emit_properties(
        self, kind: str, object_id: str, names: Iterable[str], *, source: str = "CRM_UI"
    ) -> None:
        """One ``*.propertyChange`` per changed property, as subscriptions are per property."""
        record = (self.account.deals if kind.startswith("deal") else self.account.contacts)[object_id]
        if kind.startswith("contact") and self.webhook_properties is not None:
            names = [n for n in names if n in self.webhook_properties]
        for name in names:
            value = record.properties.get(name, "")
            self.emit(kind, object_id, source=source, propertyName=name, propertyValue=value)

    @classmethod
    def account_id_problem(cls, account_id: str) -> str | None:
        if account_id.isdigit() and 0 < int(account_id) < 2**31:
            return None
        return "a HubSpot portal id is a positive 32-bit integer"

    def rate_windows(self) -> Mapping[str, Sequence[tuple[int, float]]]:
        return {
            "ten_secondly": [(self.rate_limit, TEN_SECONDS)],
            "daily": [(self.daily_limit, DAY)],
            "search": [(self.search_per_second, 1.0)],
        }

    @property
    def retry_after_header(self) -> bool:
        return self.retry_after_on_429

    @retry_after_header.setter
    def retry_after_header(self, value: bool) -> None:
        self.retry_after_on_429 = value

    def set_rate_limit(self, per_10s: int) -> None:
        with self.server.lock:
            self.rate_limit = per_10s
            self.apply_rate_windows()

    # -- the portal's users, acting behind segsync's back ----------------------------------

    def seed(self, data: SeedData) -> None:
        with self.server.lock:
            self.account.seed(data, self.now())

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        with self.server.lock:
            contact = self.account.contacts.get(contact_id)
            if contact is None or contact.archived:
                raise KeyError(f"no live contact {contact_id!r} in the sandbox")
            deal = self.account.add_deal(
                self.account.new_id(),
                [contact_id],
                amount=format(amount, "f"),
                currency=self.account.home_currency,
                closedate=iso(closed_at if closed_at.tzinfo else closed_at.replace(tzinfo=dt.UTC)),
                stage="closedwon",
                now=self.now(),
                pipeline=HOME_PIPELINE,
            )
            self.emit("deal.creation", deal.id, source="INTEGRATION")
            return deal.id

    def associate(self, deal_id: str, contact_id: str) -> None:
        """Add one more contact to a deal (deals bought by several people). Whether that moves
        the deal's ``hs_lastmodifieddate`` is unconfirmed: only with ``bump_on_association``."""
        with self.server.lock:
            deal = self.account.deals[deal_id]
            if contact_id not in deal.contacts:
                deal.contacts.append(contact_id)
                if self.bump_on_association:
                    deal.touch(iso(self.now()))
                self.emit_association(deal_id, contact_id)

    def emit_association(self, deal_id: str, contact_id: str, *, removed: bool = False) -> None:
        self.emit(
            "deal.associationChange",
            deal_id,
            fromObjectId=int(deal_id),
            toObjectId=int(contact_id),
            associationType="DEAL_TO_CONTACT",
            associationRemoved=removed,
        )

    def set_deal_stage(self, deal_id: str, stage: str) -> None:
        """Move a deal to another stage (``closedwon``, ``closedlost``...), as a user would."""
        with self.server.lock:
            deal = self.account.deals[deal_id]
            deal.properties["dealstage"] = stage
            deal.touch(iso(self.now()))
            self.emit_properties("deal.propertyChange", deal_id, ["dealstage"])

    def set_deal_amount(self, deal_id: str, amount: Decimal) -> None:
        with self.server.lock:
            deal = self.account.deals[deal_id]
            deal.properties["amount"] = format(amount, "f")
            home_amount(deal.properties, self.account.home_currency)
            deal.touch(iso(self.now()))
            self.emit_properties("deal.propertyChange", deal_id, ["amount"])

    def archive_deal(self, deal_id: str) -> None:
        """Delete a deal: HubSpot archives it (gone from pages and search, in ``archived=true``)."""
        with self.server.lock:
            self.account.deals[deal_id].archive(iso(self.now()))
            self.emit("deal.deletion", deal_id)

    def bulk_touch_deals(self, deal_ids: Iterable[str]) -> None:
        """An import that modifies many deals in one instant: one timestamp for all."""
        with self.server.lock:
            stamp = iso(self.now())
            for i in deal_ids:
                self.account.deals[i].touch(stamp)

    def add_contact(self, email: str | None, attributes: dict[str, Any] | None = None) -> str:
        """A contact created in the portal (a form, an import): ``attributes`` are properties."""
        with self.server.lock:
            stamp = iso(self.now())
            props = {k: str(v) for k, v in (attributes or {}).items() if v is not None}
            if email:
                props["email"] = email
            cid = self.account.add_contact(self.account.new_id(), props, stamp, stamp).id
            self.emit("contact.creation", cid)
            return cid

    def set_contact_property(self, contact_id: str, name: str, value: str | None) -> None:
        """A user edits a contact: the value changes and so does ``lastmodifieddate``."""
        with self.server.lock:
            contact = self.account.contacts[contact_id]
            if value is None:
                contact.properties.pop(name, None)
            else:
                contact.properties[name] = value
            contact.touch(iso(self.now()), CONTACT_MODIFIED)
            self.emit_properties("contact.propertyChange", contact_id, [name])

    def delete_contact(self, contact_id: str) -> None:
        """Archive the contact: gone from pages, lists and associations, as in HubSpot."""
        with self.server.lock:
            self.account.contacts[contact_id].archive(iso(self.now()))
            for lst in self.account.lists.values():
                lst.members.pop(contact_id, None)
            self.emit("contact.deletion", contact_id)

    def delete_list(self, list_id: str) -> None:
        with self.server.lock:
            self.account.lists[list_id].deleted = True

    def rename_list(self, list_id: str, name: str) -> None:
        with self.server.lock:
            self.account.lists[list_id].name = name

    def add_user_list(self, name: str, members: Iterable[str] = ()) -> str:
        """A MANUAL list someone made in HubSpot; not segsync's, so not in snapshots."""
        with self.server.lock:
            now = iso(self.now())
            new = HubList(self.account.new_list_id(), name, "MANUAL", now, managed=False)
            new.members.update(dict.fromkeys(members, now))
            self.account.lists[new.id] = new
            return new.id

    def list_member_ids(self, list_id: str) -> set[str]:
        """Members of a MANUAL list, as HubSpot stores them."""
        with self.server.lock:
            return set(self.account.lists[list_id].members)

    def add_user_property(
        self,
        name: str,
        type_: str,
        field_type: str,
        *,
        options: Sequence[str] = (),
        group: str = "contactinformation",
    ) -> None:
        """A contact property someone made in HubSpot, possibly clashing with a segsync name."""
        with self.server.lock:
            opts = [{"label": o, "value": o, "hidden": False} for o in options]
            problem = check_options(type_, opts or None)
            if problem:
                raise ValueError(problem)
            self.account.properties["contacts"][name] = Property(
                name,
                name,
                type_,
                field_type,
                group,
                options=stored_options(opts),
                created_at=iso(self.now()),
            )

    def contact_values(self, contact_id: str) -> dict[str, str]:
        with self.server.lock:
            return dict(self.account.contacts[contact_id].properties)

    def snapshot(self) -> dict[str, object]:
        with self.server.lock:
            return self.account.snapshot()
