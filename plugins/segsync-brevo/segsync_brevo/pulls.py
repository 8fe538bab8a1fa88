"""Pulls from Brevo: contacts, and purchases from won deals or eCommerce orders, resumable.

Deals, pipelines, the deal attribute catalogue and orders count in the scarce hourly bucket:
catalogues are read once per run, and after each page ``resume_tokens[stream]`` says where a
pull stands, so a paused pull takes it back as ``resume=`` instead of starting over.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segsync import ConfigError, Contact, FieldSpec, PermanentError, Purchase, PurchaseRetracted, Rejection
from segsync_brevo import mapping
from segsync_brevo.attributes import Attributes
from segsync_brevo.client import NO_RETRY, PageCursor
from segsync_brevo.config import OTHER
from segsync_brevo.session import BrevoSession, not_found


def _deal_version(deal: Mapping[str, Any]) -> str:
    return f"{deal.get('id')}@{(deal.get('attributes') or {}).get('last_updated_date')}"


class Pulls:
    """Contacts and purchases of one account, page by page."""

    def __init__(self, session: BrevoSession, attributes: Attributes) -> None:
        self.session = session
        self.attributes = attributes
        #: Where each paused pull stands ("contacts", "purchases"); pass back as ``resume=``.
        self.resume_tokens: dict[str, str] = {}
        self._won: dict[str, str] | None = None
        self._deal_attributes: tuple[str, str | None] | None = None
        self._email_ids: dict[str, str | None] = {}
        #: The newest ``modifiedAt`` among the contacts the last contact pull yielded.
        self.contacts_newest: dt.datetime | None = None

    # -- contacts ---------------------------------------------------------------------------

    def contacts(
        self,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
        *,
        modified_since: dt.datetime | None = None,
        resume: str | None = None,
    ) -> Iterator[Contact | Rejection]:
        """Every contact, oldest first; ``modified_since`` narrows to recent changes.

        Adding a contact to a list changes its ``modifiedAt`` on Brevo, so an incremental pull
        also returns the contacts segsync itself moved.
        """
        self.attributes.remember(managed)
        catalogue = self.attributes.catalogue(refresh=True)
        fields: list[tuple[str, str, str, Mapping[int, str]]] = []
        for spec in managed:
            name = mapping.attribute_name(spec.key)
            attr = catalogue.get(name) or {}
            by_code = {code: value for value, code in self.attributes.codes(spec.key, attr).items()}
            fields.append((spec.key, name, mapping.spec_kind(spec), by_code))
        list_keys = {int(v): k for k, v in lists.items() if str(v).isdigit()}
        since = mapping.format_since(modified_since) if modified_since else None
        overrides = self.session.settings.property_attributes
        if resume is None:
            self.contacts_newest = None

        for items, cursor in self.session.contact_pages(resume=resume, modified_since=since):
            for raw in items:
                stamp = mapping.parse_datetime(raw.get("modifiedAt"))
                if stamp is not None and (self.contacts_newest is None or stamp > self.contacts_newest):
                    self.contacts_newest = stamp
                contact = mapping.contact_from_brevo(
                    raw, properties=properties, managed=fields, list_keys=list_keys, overrides=overrides
                )
                self.session.emails[contact.id] = contact.email
                yield contact
            self.resume_tokens["contacts"] = cursor.token()
        self.resume_tokens.pop("contacts", None)

    # -- purchases --------------------------------------------------------------------------

    def purchases(
        self, since: dt.datetime | None, *, resume: str | None = None
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection]:
        """Won deals (or completed orders) as purchases, oldest first.

        With ``since``, only records modified since then; those no longer won come back as
        :class:`PurchaseRetracted`. Deleted deals only disappear on a full pull.
        """
        modified = mapping.format_since(since) if since else None
        incremental = since is not None
        if self.session.settings.purchases == "orders":
            records = self._order_pages(modified, incremental, resume)
        else:
            records = self._deal_pages(modified, incremental, resume)
        for batch, cursor in records:
            yield from batch
            self.resume_tokens["purchases"] = cursor.token()
        self.resume_tokens.pop("purchases", None)

    def won_stages(self) -> dict[str, str]:
        """Stage id -> name of the stages ``won_stages`` names, read once."""
        if self._won is None:
            sdk = self.session.sdk
            body = self.session.call(
                "pipelines.list",
                lambda: sdk.deals.with_raw_response.get_all_pipelines(request_options=NO_RETRY),
                bucket=OTHER,
            ).body
            pipelines = body if isinstance(body, list) else []
            wanted = self.session.settings.won_stages
            won = mapping.won_stage_ids(pipelines, wanted)
            if not won:
                found = sorted({str(s.get("name")) for p in pipelines for s in p.get("stages") or ()})
                raise ConfigError(
                    f"[platforms.brevo] won_stages {list(wanted)} matches no deal stage; "
                    f"this account's stages are: {', '.join(found) or 'none'}"
                )
            self._won = won
        return self._won

    def _deal_catalogue(self) -> tuple[str, str | None]:
        """(close date attribute, currency attribute), from settings or the deal attribute catalogue."""
        if self._deal_attributes is None:
            s = self.session.settings
            if s.close_date_attribute and s.currency_attribute:
                self._deal_attributes = (s.close_date_attribute, s.currency_attribute)
                return self._deal_attributes
            sdk = self.session.sdk
            body = self.session.call(
                "deal_attributes.list",
                lambda: sdk.deals.with_raw_response.get_deal_attributes(request_options=NO_RETRY),
                bucket=OTHER,
            ).body
            catalogue = body if isinstance(body, list) else []
            names = {str(a.get("internalName")) for a in catalogue}
            if s.amount_attribute not in names:
                raise ConfigError(
                    f"[platforms.brevo] amount_attribute {s.amount_attribute!r} is not a deal attribute "
                    f"of this account (it has: {', '.join(sorted(names))})"
                )
            self._deal_attributes = (
                mapping.close_date_attribute(catalogue, s.close_date_attribute),
                mapping.currency_attribute(catalogue, s.currency_attribute),
            )
        return self._deal_attributes

    def _deal_pages(
        self, modified: str | None, incremental: bool, resume: str | None
    ) -> Iterator[tuple[list[mapping.Record], PageCursor]]:
        won = self.won_stages()
        close, currency = self._deal_catalogue()
        s, sdk = self.session.settings, self.session.sdk
        # Oldest change first, so the engine can checkpoint a long pull by its modification
        # cursor; a deal modified while paging moves to the end and comes again, newer.
        pages = self.session.paged(
            "deals.list",
            lambda offset, limit: sdk.deals.with_raw_response.get_all_deals(
                offset=offset,
                limit=limit,
                sort="asc",
                sort_by="last_updated_date",
                modified_since=modified,
                request_options=NO_RETRY,
            ),
            "items",
            limit=s.deals_page,
            bucket=OTHER,
            resume=resume,
            version=_deal_version,
        )
        for items, cursor in pages:
            out: list[mapping.Record] = []
            for deal in items:
                out += mapping.deal_records(
                    deal,
                    won_stages=won,
                    amount_attribute=s.amount_attribute,
                    close_attribute=close,
                    currency=s.currency,
                    incremental=incremental,
                    currency_attribute=currency,
                )
            yield out, cursor

    def _order_pages(
        self, modified: str | None, incremental: bool, resume: str | None
    ) -> Iterator[tuple[list[mapping.Record], PageCursor]]:
        s, sdk = self.session.settings, self.session.sdk
        pages = self.session.paged(
            "orders.list",
            lambda offset, limit: sdk.ecommerce.with_raw_response.get_orders(
                limit=limit, offset=offset, sort="asc", modified_since=modified, request_options=NO_RETRY
            ),
            "orders",
            limit=s.orders_page,
            bucket=OTHER,
            resume=resume,
        )
        for items, cursor in pages:
            out: list[mapping.Record] = []
            for order in items:
                contact = order.get("contact_id")
                contact_id = (
                    str(contact) if contact not in (None, "") else self._contact_by_email(order.get("email"))
                )
                out += mapping.order_records(
                    order,
                    contact_id=contact_id,
                    statuses=s.order_statuses,
                    currency=s.currency,
                    incremental=incremental,
                )
            yield out, cursor

    def _contact_by_email(self, email: Any) -> str | None:
        """The id of the contact with this email (orders may carry only the email)."""
        if not isinstance(email, str) or "@" not in email:
            return None
        key = email.casefold()
        if key not in self._email_ids:
            # brevo-python puts path parameters in the URL unencoded; '+', '/', '#' and '?' in
            # an address would change the URL, so the identifier is percent-encoded here.
            ident = urllib.parse.quote(email, safe="@")
            sdk = self.session.sdk
            try:
                body = self.session.call(
                    "contacts.get",
                    lambda: sdk.contacts.with_raw_response.get_contact_info(
                        ident, identifier_type="email_id", request_options=NO_RETRY
                    ),
                ).body
                self._email_ids[key] = str(body["id"])
            except PermanentError as exc:
                if not not_found(exc):
                    raise
                self._email_ids[key] = None
        return self._email_ids[key]
