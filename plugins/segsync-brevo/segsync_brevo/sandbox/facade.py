"""The Brevo sandbox's facade: the emulated account, its options, and the actions of its users.

Tests and the demo act "behind segsync's back" through it (a purchase, a deleted contact, an
attribute someone made); the HTTP side is :mod:`.server`, the account's state :mod:`.account`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from segsync import Clock
from segsync.sandbox import (
    FaultPlan,
    SandboxBase,
    SeedData,
    SeedRules,
    check_seed,
    derived_account_id,
)
from segsync_brevo.config import RATE_TIERS
from segsync_brevo.mapping import NEUTRAL_ATTRIBUTES, parse_datetime, to_decimal
from segsync_brevo.sandbox.account import (
    Attribute,
    BrevoAccount,
    Contact,
    ContactList,
    Deal,
    Order,
)
from segsync_brevo.sandbox.imports import ImportQueue, Process
from segsync_brevo.sandbox.server import BrevoServer

#: The id of the one webhook the sandbox account has (Brevo numbers them).
WEBHOOK_ID = 7287


class BrevoSandbox(SandboxBase):
    """The Brevo account emulator (implements :class:`segsync.sandbox.Sandbox`).

    Extra keywords tune strictness where Brevo's behaviour is not confirmed: ``rate_tier``
    (general, advanced, extended), ``other_per_hour`` (the hourly bucket's budget),
    ``deals_page_max``, ``retry_after_on_429`` (Brevo is not known to send one),
    ``import_step_seconds`` (an import moves one status step by itself in this long),
    ``require_import_list``, ``account_id`` (24 hex digits; by default derived from the key) and
    ``honour_deal_sort``: False makes ``GET /crm/deals`` ignore ``sortBy=last_updated_date`` and
    answer in creation order (Brevo's docs do not say the sort is honoured on every account).
    ``webhook_url`` and ``webhook_token`` make it send marketing webhooks for contact changes
    there with that bearer token (or :meth:`subscribe_webhooks` later); deals send none, as on
    Brevo.
    """

    platform: ClassVar[str] = "brevo"
    seed_rules: ClassVar[SeedRules] = SeedRules("Brevo", integer_contact_ids=True)
    server_class = BrevoServer
    base_path = "/v3"

    plans: ClassVar[Mapping[str, Mapping[str, Any]]] = {tier: {"rate_tier": tier} for tier in RATE_TIERS}

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        rate_tier: str = "general",
        other_per_hour: int | None = None,
        deals_page_max: int = 50,
        retry_after_on_429: bool = False,
        import_step_seconds: float = 10.0,
        require_import_list: bool = True,
        account_id: str | None = None,
        honour_deal_sort: bool = True,
        webhook_url: str | None = None,
        webhook_token: str | None = None,
    ) -> None:
        if rate_tier not in RATE_TIERS:
            raise ValueError(f"rate_tier must be one of {', '.join(RATE_TIERS)}")
        self.rate_tier = rate_tier
        self.other_per_hour = other_per_hour
        self.deals_page_max = deals_page_max
        self.honour_deal_sort = honour_deal_sort
        self.require_import_list = require_import_list
        #: OAuth and other calls outside /v3 (the SDK must never make them).
        self.foreign_calls = 0
        #: The emulated account; not named ``account``, which tells the HubSpot sandbox apart.
        self.state = BrevoAccount(now=self.now)
        super().__init__(
            secret=secret,
            port=port,
            traffic_log=traffic_log,
            faults=faults,
            clock=clock,
            account_id=account_id,
        )
        self.retry_after_on_429 = retry_after_on_429
        self.imports = ImportQueue(self.state, self.clock, import_step_seconds)
        if webhook_url:
            self.subscribe_webhooks(webhook_url, webhook_token or "")

    def subscribe_webhooks(self, url: str, token: str) -> None:
        """Send marketing webhooks (contact events) to ``url`` with ``Authorization: Bearer
        <token>``, as a webhook created with ``"auth": {"type": "bearer"}`` does."""
        if not token:
            raise ValueError("webhooks need webhook_token, the bearer token Brevo sends with them")
        self.send_webhooks(
            url, lambda method, target, body: {"Authorization": f"Bearer {token}"}, batch=1, as_array=False
        )

    def emit(self, event: str, contact: Contact) -> None:
        """Queue the marketing webhook Brevo sends for a contact change (none without ``webhook_url``)."""
        if self.webhooks is None:
            return
        now = self.now()
        self.webhooks.emit(
            {
                "id": WEBHOOK_ID,
                "event": event,
                "email": contact.email,
                "contact_id": contact.id,
                "date": now.strftime("%Y-%m-%d %H:%M:%S"),
                "ts": int(now.timestamp()),
                "ts_event": int(now.timestamp()),
            }
        )

    @classmethod
    def derive_account_id(cls, secret: str) -> str:
        """``organization_id``: 24 hex digits, like Brevo's object ids."""
        return derived_account_id(secret, digits=24, hexadecimal=True)

    @classmethod
    def account_id_problem(cls, account_id: str) -> str | None:
        if re.fullmatch(r"[0-9a-f]{24}", account_id):
            return None
        return "a Brevo organization id is 24 lower-case hex digits"

    def rate_windows(self) -> Mapping[str, Sequence[tuple[int, float]]]:
        windows: dict[str, Sequence[tuple[int, float]]] = dict(RATE_TIERS[self.rate_tier])
        if self.other_per_hour is not None:
            windows["other"] = [(self.other_per_hour, 3600.0)]
        return windows

    # -- the account's state, for tests -------------------------------------------------------

    @property
    def contacts(self) -> dict[int, Contact]:
        return self.state.contacts

    @property
    def attributes(self) -> dict[str, Attribute]:
        return self.state.attributes

    @property
    def folders(self) -> dict[int, str]:
        return self.state.folders

    @property
    def lists(self) -> dict[int, ContactList]:
        return self.state.lists

    @property
    def members(self) -> dict[int, set[int]]:
        return self.state.members

    @property
    def deals(self) -> dict[str, Deal]:
        return self.state.deals

    @property
    def orders(self) -> dict[str, Order]:
        return self.state.orders

    @property
    def processes(self) -> dict[int, Process]:
        return self.imports.processes

    # -- Sandbox protocol ---------------------------------------------------------------------

    def seed(self, data: SeedData) -> None:
        with self.server.lock:
            account = self.state
            known = {str(i) for i in account.contacts}
            emails = {e: str(i) for e, i in account.emails.items()}
            check_seed(
                data, self.seed_rules, known_contacts=known, known_deals=account.deals, known_emails=emails
            )
            for c in data.contacts:
                created = parse_datetime(c.createdate) or self.now()
                attrs: dict[str, Any] = {}
                for column, name in NEUTRAL_ATTRIBUTES.items():
                    value = getattr(c, column)
                    if value:
                        number = to_decimal(value) if name == "AGE" else None
                        attrs[name] = float(number) if number is not None else value
                account.add_contact(int(c.id), c.email or None, attrs, created)
            for p in data.purchases:
                contact = int(p.contact_id) if p.contact_id.isdigit() else None
                closed = parse_datetime(p.closedate)
                # Seeded deals were created (and last changed) when they closed, or now for one
                # closing later: Brevo's own timestamps are never in the future (a future
                # last_updated_date would hold an incremental pull's cursor past every change).
                changed = min(closed, self.now()) if closed is not None else None
                deal = account.add_deal(p.deal_id, contact, p.amount, closed, p.stage, created=changed)
                if p.currency:
                    account.deals[deal].attributes["deal_currency"] = p.currency

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        with self.server.lock:
            return self.state.add_deal(None, int(contact_id), str(amount), closed_at, "won")

    def delete_contact(self, contact_id: str) -> None:
        with self.server.lock:
            contact = self.state.contacts[int(contact_id)]
            self.state.delete_contact(int(contact_id))
            self.emit("contact_deleted", contact)

    def delete_list(self, list_id: str) -> None:
        with self.server.lock:
            self.state.delete_list(int(list_id))

    def snapshot(self) -> dict[str, object]:
        with self.server.lock:
            self.imports.settle()
            return self.state.snapshot()

    # -- the account's users, acting behind segsync's back ------------------------------------

    def add_contact(self, email: str | None, attributes: dict[str, Any] | None = None) -> str:
        with self.server.lock:
            contact = self.state.new_contact(email, attributes)
            self.emit("contact_updated", contact)
            return str(contact.id)

    def set_deal_stage(self, deal_id: str, stage: str) -> None:
        with self.server.lock:
            self.state.set_deal_stage(deal_id, stage)

    def add_order(self, email: str, amount: Decimal, status: str = "completed") -> str:
        """An eCommerce order that names its buyer by email only, as shops often send them."""
        with self.server.lock:
            order_id = f"order-{self.state.take('deal')}"
            now = self.now()
            self.state.orders[order_id] = Order(order_id, None, float(amount), status, now, now, email=email)
            return order_id

    def add_attribute(self, name: str, category: str, type_: str | None) -> None:
        """An attribute a user made (not segsync's), e.g. to provoke a type conflict."""
        with self.server.lock:
            self.state.attributes[name] = Attribute(name, category, type_, managed=False)

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self.server.lock:
            self.imports.settle()
            return self.state.contact_json(self.state.contacts[int(contact_id)])

    def add_user_list(self, name: str, members: Iterable[str] = ()) -> str:
        """A list someone made in Brevo, in a folder of their own; not segsync's."""
        with self.server.lock:
            lid = self.state.new_list(name, self.state.new_folder("Your first folder"))
            self.state.members[lid].update(int(m) for m in members)
            return str(lid)

    def list_member_ids(self, list_id: str) -> set[str]:
        with self.server.lock:
            return {str(i) for i in self.state.members[int(list_id)]}
