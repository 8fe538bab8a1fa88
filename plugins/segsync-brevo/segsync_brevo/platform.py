"""The Brevo platform: segsync's Platform protocol on brevo-python.

Budget first. Brevo's base tier gives the endpoints under ``/v3/contacts`` 10 requests a
second, but everything else (deals, orders, pipelines, import status) only 100 an hour. So:

* contacts, attributes, folders, lists, memberships and imports use the contacts bucket;
* deals, pipelines, the deal attribute catalogue, orders and import status polls use the
  hourly bucket; catalogues are read once per run, polls back off exponentially on the
  runner's clock, and ``call_cost`` counts them so ``plan`` can say how many hours a first
  sync takes;
* pulls are resumable: after each page ``resume_tokens[stream]`` says where the pull stands,
  and ``iter_contacts``/``iter_purchases`` take it back as ``resume=`` after a pause.

Writes go through ``POST /contacts/import`` (``/contacts/batch`` is retired). Brevo ignores
attributes it does not know and values of the wrong type, so every attribute is checked
before an import is sent, and every import is followed to completion and read back: only
contacts whose values Brevo really stored are reported ok.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from brevo.contacts import (
    AddContactToListRequestBodyIds,
    CreateAttributeRequestEnumerationItem,
    ImportContactsRequestJsonBodyItem,
    RemoveContactFromListRequestBodyIds,
    UpdateAttributeRequestEnumerationItem,
)
from pydantic import SecretStr

from segsync import (
    CallRunner,
    ConfigError,
    ConflictError,
    Contact,
    ContactUpdate,
    CostKind,
    FieldSpec,
    FieldValue,
    ListSpec,
    PermanentError,
    PlatformLimits,
    PlatformSettings,
    Purchase,
    PurchaseRetracted,
    RateWindow,
    RecordFailure,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync_brevo import mapping
from segsync_brevo.client import (
    NO_RETRY,
    PLATFORM,
    SECRET_ENV,
    BrevoClient,
    PageCursor,
    Reply,
    offset_pages,
    parse_http_date,
)
from segsync_brevo.config import BASE_URL_ENV, CONTACTS, DEFAULT_BASE_URL, OTHER, BrevoSettings

if TYPE_CHECKING:
    from segsync.manifest import PlatformManifest
    from segsync.sandbox import Sandbox

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")

MEMBERSHIP_BATCH = 150
#: Brevo's largest page for lists, folders and list members.
LISTS_PAGE = 50
MEMBERS_PAGE = 500
#: Bytes per contact in an import body, for cost estimates (email + a dozen attributes).
IMPORT_BYTES_PER_CONTACT = 600


def _pages(records: int, size: int) -> int:
    """Requests an overlapping offset pull (see ``offset_pages``) makes for ``records`` items."""
    if records < size:
        return 1
    return 2 + (records - size) // (size - 1)


def _flat(pages: Iterator[tuple[list[Mapping[str, Any]], PageCursor]]) -> Iterator[Mapping[str, Any]]:
    for items, _ in pages:
        yield from items


def _deal_version(deal: Mapping[str, Any]) -> str:
    return f"{deal.get('id')}@{(deal.get('attributes') or {}).get('last_updated_date')}"


class BrevoPlatform:
    """One Brevo account."""

    name: ClassVar[str] = "brevo"
    display_name: ClassVar[str] = "Brevo"
    Settings: ClassVar[type[PlatformSettings]] = BrevoSettings
    secret_env: ClassVar[str] = SECRET_ENV
    memberships_inline: ClassVar[bool] = True
    incremental_purchases: ClassVar[bool] = True

    def __init__(self, settings: BrevoSettings, client: BrevoClient, runner: CallRunner) -> None:
        self.settings = settings
        self.client = client
        self.sdk = client.sdk
        self.runner = runner
        self.limits = PlatformLimits(write_batch=settings.write_batch, membership_batch=MEMBERSHIP_BATCH)
        #: Where each paused pull stands ("contacts", "purchases"); pass back as ``resume=``.
        self.resume_tokens: dict[str, str] = {}
        self._specs: dict[str, FieldSpec] = {}
        self._catalogue: dict[str, dict[str, Any]] | None = None
        self._folder_id: int | None = None
        self._import_list_id: int | None = None
        self._lists: list[dict[str, Any]] | None = None
        self._won: dict[str, str] | None = None
        self._deal_attributes: tuple[str, str | None] | None = None
        self._email_ids: dict[str, str | None] = {}
        #: contact id -> email, from pulls: imports find contacts by email
        self._emails: dict[str, str | None] = {}

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def rate_buckets(cls, settings: PlatformSettings) -> Mapping[str, Sequence[RateWindow]]:
        return cls._settings(settings).rate_windows()

    @classmethod
    def create(cls, settings: PlatformSettings, *, secret: SecretStr, runner: CallRunner) -> BrevoPlatform:
        brevo = cls._settings(settings)
        base_url = brevo.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"[platforms.brevo] base_url {base_url!r} must start with http:// or https://")
        if not secret.get_secret_value().strip():
            raise ConfigError(f"{SECRET_ENV} is empty; set it to a Brevo API key (SMTP & API > API keys)")
        client = BrevoClient(api_key=secret, base_url=base_url, timeout=brevo.timeout, runner=runner)
        return cls(brevo, client, runner)

    @staticmethod
    def _settings(settings: PlatformSettings) -> BrevoSettings:
        if isinstance(settings, BrevoSettings):
            return settings
        return BrevoSettings.model_validate(settings.model_dump())

    @classmethod
    def manifest(cls) -> PlatformManifest:
        """What the plugin needs (API key areas), obeys (limits) and creates in Brevo."""
        from segsync.manifest import load_platform_manifest

        return load_platform_manifest(MANIFEST_PATH)

    @classmethod
    def sandbox(cls) -> type[Sandbox] | None:
        from segsync_brevo.sandbox import BrevoSandbox

        return BrevoSandbox

    def close(self) -> None:
        self.client.close()

    # -- small helpers ------------------------------------------------------------------------

    def _call(
        self, operation: str, fn: Callable[[], Any], *, bucket: str = CONTACTS, write: bool = False
    ) -> Reply:
        return self.client.call(operation, fn, bucket=bucket, write=write)

    def _paged(
        self,
        operation: str,
        request: Callable[[int, int], Any],
        key: str,
        *,
        limit: int,
        bucket: str = CONTACTS,
        resume: str | None = None,
        version: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> Iterator[tuple[list[Mapping[str, Any]], PageCursor]]:
        """Offset pages of one list endpoint; ``request(offset, limit)`` is the raw SDK call and
        ``key`` the array in its answer."""

        def fetch(offset: int, size: int) -> list[Mapping[str, Any]]:
            body = self._call(operation, lambda: request(offset, size), bucket=bucket).body
            return list((body or {}).get(key) or ())

        return offset_pages(
            fetch, limit=limit, cursor=PageCursor.parse(resume), version=version, operation=operation
        )

    def _contact_pages(
        self, *, resume: str | None = None, **filters: Any
    ) -> Iterator[tuple[list[Any], PageCursor]]:
        """``GET /contacts`` oldest first, 1000 a page, with filters (modified_since, list_ids, ...)."""
        return self._paged(
            "contacts.list",
            lambda offset, limit: self.sdk.contacts.with_raw_response.get_contacts(
                limit=limit, offset=offset, sort="asc", request_options=NO_RETRY, **filters
            ),
            "contacts",
            limit=self.settings.contacts_page,
            resume=resume,
        )

    def _attributes(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._catalogue is None or refresh:
            body = self._call(
                "attributes.list",
                lambda: self.sdk.contacts.with_raw_response.get_attributes(request_options=NO_RETRY),
            ).body
            self._catalogue = {str(a["name"]).upper(): a for a in (body or {}).get("attributes") or ()}
        return self._catalogue

    def _remember(self, specs: Sequence[FieldSpec]) -> None:
        self._specs.update((s.key, s) for s in specs)

    def _codes(self, key: str, attr: Mapping[str, Any]) -> dict[str, int]:
        enumeration = attr.get("enumeration") or ()
        spec = self._specs.get(key)
        if spec is not None:
            return mapping.option_codes(spec.options, enumeration)
        return mapping.codes_from_labels(enumeration)

    @staticmethod
    def _not_found(exc: PermanentError) -> bool:
        return exc.status == 404

    # -- check --------------------------------------------------------------------------------

    def account_id(self) -> str:
        """The organisation the key belongs to (``GET /account``, crm-api-facts §2.12).

        ``organization_id`` when Brevo sends it; else the login e-mail, hashed so that no
        address reaches the state store or the logs.
        """
        body = self._call(
            "account.get",
            lambda: self.sdk.account.with_raw_response.get_account(request_options=NO_RETRY),
            bucket=OTHER,
        ).body
        body = body if isinstance(body, Mapping) else {}
        org = body.get("organization_id")
        if isinstance(org, str) and org.isalnum() and 0 < len(org) <= 64:
            return org
        login = body.get("email")
        if isinstance(login, str) and login.strip():
            digest = hashlib.sha256(login.strip().lower().encode()).hexdigest()[:24]
            return f"login-{digest}"
        raise PermanentError(
            "Brevo's account details name no organisation; check the API key with `segsync check`",
            platform=PLATFORM,
            operation="account.get",
        )

    def check(self) -> list[str]:
        catalogue = self._attributes(refresh=True)
        ours = sorted(n for n in catalogue if n.startswith("SEGSYNC_"))
        windows = self.settings.rate_windows()
        notes = [
            f"API key accepted; the account has {len(catalogue)} contact attributes, "
            f"{len(ours)} of them segsync's",
            f"rate tier {self.settings.rate_tier}: contacts {windows[CONTACTS][0].requests}/s, "
            f"deals, orders and import status {windows[OTHER][0].requests}/hour",
        ]
        if self.settings.purchases == "deals":
            won = self._won_stages()
            notes.append(f"purchases: won deals in {', '.join(sorted(won.values()))}")
        else:
            self._call(
                "orders.list",
                lambda: self.sdk.ecommerce.with_raw_response.get_orders(limit=1, request_options=NO_RETRY),
                bucket=OTHER,
            )
            notes.append("purchases: eCommerce orders with status " + ", ".join(self.settings.order_statuses))
        return notes

    # -- contacts -----------------------------------------------------------------------------

    def iter_contacts(
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
        self._remember(managed)
        catalogue = self._attributes(refresh=True)
        fields: list[tuple[str, str, str, Mapping[int, str]]] = []
        for spec in managed:
            name = mapping.attribute_name(spec.key)
            attr = catalogue.get(name) or {}
            by_code = {code: value for value, code in self._codes(spec.key, attr).items()}
            fields.append((spec.key, name, mapping.spec_kind(spec), by_code))
        list_keys = {int(v): k for k, v in lists.items() if str(v).isdigit()}
        since = mapping.format_since(modified_since) if modified_since else None
        overrides = self.settings.property_attributes

        for items, cursor in self._contact_pages(resume=resume, modified_since=since):
            for raw in items:
                contact = mapping.contact_from_brevo(
                    raw, properties=properties, managed=fields, list_keys=list_keys, overrides=overrides
                )
                self._emails[contact.id] = contact.email
                yield contact
            self.resume_tokens["contacts"] = cursor.token()
        self.resume_tokens.pop("contacts", None)

    # -- purchases ----------------------------------------------------------------------------

    def iter_purchases(
        self, since: dt.datetime | None, *, resume: str | None = None
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection]:
        """Won deals (or completed orders) as purchases, oldest first.

        With ``since``, only records modified since then; those no longer won come back as
        :class:`PurchaseRetracted`. Deleted deals only disappear on a full pull.
        """
        modified = mapping.format_since(since) if since else None
        incremental = since is not None
        if self.settings.purchases == "orders":
            records = self._order_pages(modified, incremental, resume)
        else:
            records = self._deal_pages(modified, incremental, resume)
        for batch, cursor in records:
            yield from batch
            self.resume_tokens["purchases"] = cursor.token()
        self.resume_tokens.pop("purchases", None)

    def _won_stages(self) -> dict[str, str]:
        if self._won is None:
            body = self._call(
                "pipelines.list",
                lambda: self.sdk.deals.with_raw_response.get_all_pipelines(request_options=NO_RETRY),
                bucket=OTHER,
            ).body
            pipelines = body if isinstance(body, list) else []
            won = mapping.won_stage_ids(pipelines, self.settings.won_stages)
            if not won:
                found = sorted({str(s.get("name")) for p in pipelines for s in p.get("stages") or ()})
                raise ConfigError(
                    f"[platforms.brevo] won_stages {list(self.settings.won_stages)} matches no deal stage; "
                    f"this account's stages are: {', '.join(found) or 'none'}"
                )
            self._won = won
        return self._won

    def _deal_catalogue(self) -> tuple[str, str | None]:
        """(close date attribute, currency attribute), from settings or the deal attribute catalogue."""
        if self._deal_attributes is None:
            s = self.settings
            if s.close_date_attribute and s.currency_attribute:
                self._deal_attributes = (s.close_date_attribute, s.currency_attribute)
                return self._deal_attributes
            body = self._call(
                "deal_attributes.list",
                lambda: self.sdk.deals.with_raw_response.get_deal_attributes(request_options=NO_RETRY),
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
        won = self._won_stages()
        close, currency = self._deal_catalogue()

        # Oldest change first, so the engine can checkpoint a long pull by its modification
        # cursor; a deal modified while paging moves to the end and comes again, newer.
        pages = self._paged(
            "deals.list",
            lambda offset, limit: self.sdk.deals.with_raw_response.get_all_deals(
                offset=offset,
                limit=limit,
                sort="asc",
                sort_by="last_updated_date",
                modified_since=modified,
                request_options=NO_RETRY,
            ),
            "items",
            limit=self.settings.deals_page,
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
                    amount_attribute=self.settings.amount_attribute,
                    close_attribute=close,
                    currency=self.settings.currency,
                    incremental=incremental,
                    currency_attribute=currency,
                )
            yield out, cursor

    def _order_pages(
        self, modified: str | None, incremental: bool, resume: str | None
    ) -> Iterator[tuple[list[mapping.Record], PageCursor]]:
        pages = self._paged(
            "orders.list",
            lambda offset, limit: self.sdk.ecommerce.with_raw_response.get_orders(
                limit=limit, offset=offset, sort="asc", modified_since=modified, request_options=NO_RETRY
            ),
            "orders",
            limit=self.settings.orders_page,
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
                    statuses=self.settings.order_statuses,
                    currency=self.settings.currency,
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
            try:
                body = self._call(
                    "contacts.get",
                    lambda: self.sdk.contacts.with_raw_response.get_contact_info(
                        ident, identifier_type="email_id", request_options=NO_RETRY
                    ),
                ).body
                self._email_ids[key] = str(body["id"])
            except PermanentError as exc:
                if not self._not_found(exc):
                    raise
                self._email_ids[key] = None
        return self._email_ids[key]

    # -- attributes ---------------------------------------------------------------------------

    def inspect_fields(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        self._remember(specs)
        catalogue = self._attributes(refresh=True)
        out: dict[str, RemoteField | None] = {}
        for spec in specs:
            attr = catalogue.get(mapping.attribute_name(spec.key))
            out[spec.key] = mapping.remote_field(attr, spec) if attr is not None else None
        return out

    def field_matches(self, spec: FieldSpec, remote: RemoteField) -> str | None:
        return mapping.field_mismatch(spec, remote)

    def create_fields(self, specs: Sequence[FieldSpec]) -> None:
        """Create the missing attributes, and the folder and list imports need (first sync)."""
        self._remember(specs)
        catalogue = self._attributes(refresh=True)
        for spec in specs:
            name = mapping.attribute_name(spec.key)
            if name in catalogue:
                continue
            category, brevo_type = mapping.ATTRIBUTE_SHAPES[spec.type]
            # Only the keys the category takes: the SDK would send an explicit None as null.
            body: dict[str, Any] = {"type": brevo_type}
            if category == "category":
                body["enumeration"] = [
                    CreateAttributeRequestEnumerationItem(**e) for e in mapping.plan_enumeration(spec, [])
                ]
            try:
                self._create_attribute(category, name, body)
            except PermanentError as exc:
                # An earlier attempt whose answer was lost may have created it: look before failing.
                again = self._attributes(refresh=True).get(name)
                if exc.category != "duplicate_parameter" or again is None:
                    raise
                mismatch = mapping.field_mismatch(spec, mapping.remote_field(again))
                if mismatch:
                    raise ConflictError(mismatch, platform=PLATFORM, operation="attributes.create") from None
        self._catalogue = None
        self._import_list()

    def _create_attribute(self, category: str, name: str, body: Mapping[str, Any]) -> None:
        self._call(
            "attributes.create",
            lambda: self.sdk.contacts.with_raw_response.create_attribute(
                category,
                name,
                request_options=NO_RETRY,
                **body,
            ),
            write=True,
        )

    def update_field_options(self, spec: FieldSpec) -> None:
        self._remember([spec])
        name = mapping.attribute_name(spec.key)
        attr = self._attributes(refresh=True).get(name)
        if attr is None or mapping.attribute_kind(attr) != "category":
            raise ConflictError(
                f"Brevo attribute {name} is missing or not a category attribute; run segsync check",
                platform=PLATFORM,
                operation="attributes.update",
            )
        existing = list(attr.get("enumeration") or ())
        wanted = mapping.plan_enumeration(spec, existing)
        if wanted == [{"value": int(e["value"]), "label": str(e["label"])} for e in existing]:
            return
        items = [UpdateAttributeRequestEnumerationItem(**e) for e in wanted]
        self._call(
            "attributes.update",
            lambda: self.sdk.contacts.with_raw_response.update_attribute(
                "category", name, enumeration=items, request_options=NO_RETRY
            ),
            write=True,
        )
        self._catalogue = None

    # -- folders and lists --------------------------------------------------------------------

    def _folder(self) -> int:
        """The id of the folder segsync's lists live in, created on first use."""
        if self._folder_id is None:
            name = self.settings.folder_name

            def find_or_create() -> int:
                folders = self._paged(
                    "folders.list",
                    lambda offset, limit: self.sdk.contacts.with_raw_response.get_folders(
                        limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                    ),
                    "folders",
                    limit=LISTS_PAGE,
                )
                for folder in _flat(folders):
                    if folder.get("name") == name:
                        return int(folder["id"])
                with self.runner.at_most_once():
                    body = self._call(
                        "folders.create",
                        lambda: self.sdk.contacts.with_raw_response.create_folder(
                            name=name, request_options=NO_RETRY
                        ),
                        write=True,
                    ).body
                return int(body["id"])

            self._folder_id = self.runner.retrying("folders.ensure", find_or_create)
        return self._folder_id

    def _list_index(self, *, refresh: bool = False) -> list[dict[str, Any]]:
        if self._lists is None or refresh:
            lists = self._paged(
                "lists.list",
                lambda offset, limit: self.sdk.contacts.with_raw_response.get_lists(
                    limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                ),
                "lists",
                limit=LISTS_PAGE,
            )
            self._lists = [dict(i) for i in _flat(lists)]
        return self._lists

    @staticmethod
    def _remote_list(item: Mapping[str, Any]) -> RemoteList:
        size = item.get("uniqueSubscribers", item.get("totalSubscribers"))
        return RemoteList(
            id=str(item["id"]), name=str(item["name"]), size=int(size) if size is not None else None
        )

    def find_list(self, name: str) -> RemoteList | None:
        """The list with exactly this name; with duplicates, the oldest in segsync's folder."""
        matches = [i for i in self._list_index(refresh=True) if i.get("name") == name]
        if not matches:
            return None
        folder = self._folder_id
        matches.sort(key=lambda i: (i.get("folderId") != folder, int(i["id"])))
        return self._remote_list(matches[0])

    def get_list(self, list_id: str) -> RemoteList | None:
        if not list_id.isdigit():
            return None
        try:
            body = self._call(
                "lists.get",
                lambda: self.sdk.contacts.with_raw_response.get_list(int(list_id), request_options=NO_RETRY),
            ).body
        except PermanentError as exc:
            if self._not_found(exc):
                return None
            raise
        return self._remote_list(body)

    def create_list(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        if dynamic:
            raise ConfigError("Brevo lists cannot filter on an attribute through the API; use static lists")
        if spec.name == self.settings.import_list_name:
            raise ConfigError(
                f"list name {spec.name!r} is the list segsync imports into; rename the segment or set "
                "[platforms.brevo] import_list_name"
            )
        folder = self._folder()
        self._lists = None  # whatever happens, the next lookup must see this create
        body = self._call(
            "lists.create",
            lambda: self.sdk.contacts.with_raw_response.create_list(
                folder_id=folder, name=spec.name, request_options=NO_RETRY
            ),
            write=True,
        ).body
        return RemoteList(id=str(body["id"]), name=spec.name, size=0)

    def _import_list(self) -> int:
        """The list imports go into (Brevo requires one): segsync's own, in its folder."""
        if self._import_list_id is None:
            name = self.settings.import_list_name
            folder = self._folder()

            def find_or_create() -> int:
                lists = self._paged(
                    "folders.lists",
                    lambda offset, limit: self.sdk.contacts.with_raw_response.get_folder_lists(
                        folder, limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                    ),
                    "lists",
                    limit=LISTS_PAGE,
                )
                for item in _flat(lists):
                    if item.get("name") == name:
                        return int(item["id"])
                with self.runner.at_most_once():
                    body = self._call(
                        "lists.create",
                        lambda: self.sdk.contacts.with_raw_response.create_list(
                            folder_id=folder, name=name, request_options=NO_RETRY
                        ),
                        write=True,
                    ).body
                return int(body["id"])

            self._import_list_id = self.runner.retrying("import_list.ensure", find_or_create)
        return self._import_list_id

    def list_members(self, list_id: str) -> Iterator[str]:
        members = self._paged(
            "lists.members",
            lambda offset, limit: self.sdk.contacts.with_raw_response.get_contacts_from_list(
                int(list_id), limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
            ),
            "contacts",
            limit=MEMBERS_PAGE,
        )
        yield from (str(c["id"]) for c in _flat(members))

    # -- memberships --------------------------------------------------------------------------

    def _contact(self, contact_id: str) -> Mapping[str, Any] | None:
        """One contact by id (``GET /contacts/{id}``), or None if it no longer exists."""
        try:
            body: Mapping[str, Any] = self._call(
                "contacts.get",
                lambda: self.sdk.contacts.with_raw_response.get_contact_info(
                    contact_id, identifier_type="contact_id", request_options=NO_RETRY
                ),
            ).body
        except PermanentError as exc:
            if self._not_found(exc):
                return None
            raise
        return body

    def _send_members(self, list_id: int, ids: list[int], *, add: bool) -> set[int]:
        """One add/remove call of at most 150 ids; returns the ids Brevo reports as failures."""
        if add:
            body = self._call(
                "lists.add",
                lambda: self.sdk.contacts.with_raw_response.add_contact_to_list(
                    list_id, request=AddContactToListRequestBodyIds(ids=ids), request_options=NO_RETRY
                ),
                write=True,
            ).body
        else:
            body = self._call(
                "lists.remove",
                lambda: self.sdk.contacts.with_raw_response.remove_contact_from_list(
                    list_id, request=RemoveContactFromListRequestBodyIds(ids=ids), request_options=NO_RETRY
                ),
                write=True,
            ).body
        result = (body or {}).get("contacts") or {}
        return {int(i) for i in result.get("failure") or ()}

    def _members_of(self, list_id: int) -> set[int]:
        """Every member of a list, read 1000 at a time (cheaper than one look per contact)."""
        return {int(c["id"]) for c in _flat(self._contact_pages(list_ids=[list_id]))}

    def _change_members(self, list_id: str, contact_ids: Sequence[str], *, add: bool) -> WriteResult:
        ok: list[str] = []
        failed: list[RecordFailure] = []
        ids: list[int] = []
        for cid in contact_ids:
            if cid.isdigit():
                ids.append(int(cid))
            elif add:
                failed.append(RecordFailure(record_id=cid, reason="not a Brevo contact id"))
            else:
                ok.append(cid)  # no such contact can be a member
        lid = int(list_id)
        refused: set[int] = set()
        for start in range(0, len(ids), MEMBERSHIP_BATCH):
            refused |= self._send_members(lid, ids[start : start + MEMBERSHIP_BATCH], add=add)
        ok += [str(i) for i in ids if i not in refused]
        if not add:
            # "failure" on removal means "not in the list" or "no such contact": either way
            # the contact is not a member, which is what was asked.
            ok += [str(i) for i in sorted(refused)]
            return WriteResult(ok=tuple(ok), failed=tuple(failed))
        # On adds, "failure" is either "already in the list" (fine) or "no such contact": look at
        # each refused contact, or read the members once when that is fewer calls (after a
        # retried call, all of them are refused).
        members: set[int] = set()
        if len(refused) > 10:
            remote = self.get_list(list_id)
            if (
                remote is not None
                and remote.size is not None
                and remote.size // self.settings.contacts_page < len(refused)
            ):
                members = self._members_of(lid)
        for i in sorted(refused):
            if i in members:
                ok.append(str(i))
                continue
            contact = self._contact(str(i))
            if contact is None:
                failed.append(RecordFailure(record_id=str(i), reason="contact no longer exists in Brevo"))
            elif lid in (contact.get("listIds") or ()):
                ok.append(str(i))
            else:
                failed.append(
                    RecordFailure(record_id=str(i), reason=f"Brevo refused to add it to list {lid}")
                )
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def add_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self._change_members(list_id, contact_ids, add=True)

    def remove_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self._change_members(list_id, contact_ids, add=False)

    # -- field writes -------------------------------------------------------------------------

    def write_fields(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        """Write managed values: one ``PUT /contacts/{id}`` each for small batches, else imports.

        A PUT costs one call from the per-second contacts budget and nothing else; an import
        also costs its status polls from the scarce hourly budget, so it only pays off for
        many contacts (``put_max``). Contacts without an email cannot be imported (imports find
        contacts by email) and always go one by one.
        """
        shapes = self._write_shapes({k for u in updates for k in u.values}, self._attributes(refresh=True))
        failed: list[RecordFailure] = []
        encoded: list[tuple[ContactUpdate, dict[str, Any]]] = []
        for update in updates:
            try:
                values = {
                    shapes[k][0]: mapping.encode_value(shapes[k][1], v, shapes[k][2])
                    for k, v in update.values.items()
                }
            except ValueError as exc:
                failed.append(RecordFailure(record_id=update.contact_id, reason=str(exc)))
                continue
            encoded.append((update, values))
        one_by_one, imported = self._route(encoded, failed)
        ok: list[str] = []
        for result in (self._put_each(one_by_one, shapes), self._import_all(imported, shapes)):
            ok += result.ok
            failed += result.failed
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _route(
        self, encoded: Sequence[tuple[ContactUpdate, dict[str, Any]]], failed: list[RecordFailure]
    ) -> tuple[list[tuple[ContactUpdate, dict[str, Any]]], list[tuple[ContactUpdate, dict[str, Any]]]]:
        """(one PUT each, imported), with the email each import item needs filled in.

        An import finds contacts by email, so it reaches one contact per email: when updates
        share an email (case aside; Brevo allows no such pair, so segsync's copy of one is out
        of date), all of them go by id instead, or each but one would be counted without its
        values ever being stored.
        """
        if len(encoded) <= self.settings.put_max:
            return list(encoded), []
        one_by_one: list[tuple[ContactUpdate, dict[str, Any]]] = []
        imported: list[tuple[ContactUpdate, dict[str, Any]]] = []
        emails = self._emails_of([u.contact_id for u, _ in encoded if not u.email])
        for update, values in encoded:
            email = update.email or emails.get(update.contact_id)
            if email:
                imported.append((update.model_copy(update={"email": email}), values))
            elif update.contact_id in emails:
                one_by_one.append((update, values))
            else:
                failed.append(RecordFailure(record_id=update.contact_id, reason="contact no longer exists"))
        seen = Counter(str(u.email).casefold() for u, _ in imported)
        one_by_one += [item for item in imported if seen[str(item[0].email).casefold()] > 1]
        return one_by_one, [item for item in imported if seen[str(item[0].email).casefold()] == 1]

    def _put_each(
        self,
        items: Sequence[tuple[ContactUpdate, dict[str, Any]]],
        shapes: Mapping[str, tuple[str, str, dict[str, int]]],
    ) -> WriteResult:
        """One ``PUT /contacts/{id}`` per contact: by id, so a deleted contact is a 404, never
        re-created. Clearing by empty string is not documented, so clears are read back."""
        ok: list[str] = []
        failed: list[RecordFailure] = []
        for update, values in items:
            cid = update.contact_id
            if not cid.isdigit():
                failed.append(RecordFailure(record_id=cid, reason="not a Brevo contact id"))
                continue
            try:
                self._put_contact(cid, values)
            except PermanentError as exc:
                if not self._not_found(exc):
                    raise
                failed.append(RecordFailure(record_id=cid, reason="contact no longer exists in Brevo"))
                continue
            cleared = {k: None for k, v in update.values.items() if v is None}
            if cleared:
                stored = (self._contact(cid) or {}).get("attributes") or {}
                kept = [
                    shapes[k][0]
                    for k in cleared
                    if not self._stored(None, stored.get(shapes[k][0]), shapes[k])
                ]
                if kept:
                    failed.append(
                        RecordFailure(record_id=cid, reason=f"Brevo kept {', '.join(kept)} when cleared")
                    )
                    continue
            ok.append(cid)
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _put_contact(self, contact_id: str, values: Mapping[str, Any]) -> None:
        self._call(
            "contacts.update",
            lambda: self.sdk.contacts.with_raw_response.update_contact(
                contact_id, identifier_type="contact_id", attributes=dict(values), request_options=NO_RETRY
            ),
            write=True,
        )

    def _import_all(
        self,
        items: Sequence[tuple[ContactUpdate, dict[str, Any]]],
        shapes: Mapping[str, tuple[str, str, dict[str, int]]],
    ) -> WriteResult:
        """Imports, each followed to completion, then one read-back of what Brevo stored.

        Values to clear go in separate imports with ``emptyContactsAttributes`` where every
        item clears the same attributes (an import is a table: an attribute one item has is
        empty, hence erased, in the items without it).
        """
        if not items:
            return WriteResult()
        setting: list[tuple[ContactUpdate, dict[str, Any]]] = []
        clearing: dict[frozenset[str], list[tuple[ContactUpdate, dict[str, Any]]]] = {}
        for update, values in items:
            kept = {n: v for n, v in values.items() if v != ""}
            cleared = {n: v for n, v in values.items() if v == ""}
            if kept:
                setting.append((update, kept))
            if cleared:
                clearing.setdefault(frozenset(cleared), []).append((update, cleared))
        batches = [(False, chunk) for chunk in self._chunks(setting)]
        batches += [(True, chunk) for group in clearing.values() for chunk in self._chunks(group)]
        # An import must be followed by status polls from the hourly budget: when that budget
        # is already spent, pause before sending it rather than leave it unchecked.
        self.runner.wait_for_budget(OTHER, "processes.get")
        unfinished: dict[str, str] = {}
        started: float | None = None
        full = self.settings.import_readback == "always"
        for erase, chunk in batches:
            server_time, process = self._import(chunk, erase=erase)
            started = server_time if started is None else min(started, server_time)
            done, problems = self._await_process(process)
            full = full or problems
            if not done:
                for update, _ in chunk:
                    unfinished[update.contact_id] = (
                        f"import {process} did not complete within {self.settings.import_timeout:.0f}s; "
                        "it is written again on the next sync"
                    )
        assert started is not None
        sent = [u for u, _ in items]
        outcome = self._verify(sent, shapes, started, full=full)
        ok: list[str] = []
        failed: list[RecordFailure] = []
        for update in sent:
            problem = unfinished.get(update.contact_id) or outcome.get(update.contact_id)
            if problem:
                failed.append(RecordFailure(record_id=update.contact_id, reason=problem))
            else:
                ok.append(update.contact_id)
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _emails_of(self, contact_ids: Sequence[str]) -> dict[str, str | None]:
        """Emails of contacts an update names by id only: from the last pull, else looked up
        20 at a time (``GET /contacts?ids=``); a contact that no longer exists maps to None."""
        out = {c: self._emails[c] for c in contact_ids if c in self._emails}
        unknown = [c for c in contact_ids if c not in out and c.isdigit()]
        for start in range(0, len(unknown), 20):
            for raw in _flat(self._contact_pages(ids=[int(c) for c in unknown[start : start + 20]])):
                out[str(raw["id"])] = self._emails[str(raw["id"])] = raw.get("email") or None
        return out

    def _write_shapes(
        self, keys: set[str], catalogue: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, tuple[str, str, dict[str, int]]]:
        """(attribute name, kind, option codes) per field key; refuses before anything is sent."""
        shapes: dict[str, tuple[str, str, dict[str, int]]] = {}
        for key in sorted(keys):
            name = mapping.attribute_name(key)
            attr = catalogue.get(name)
            if attr is None:
                # Brevo would silently drop it: never send a write it cannot store.
                raise PermanentError(
                    f"contact attribute {name} does not exist in Brevo (deleted?); nothing was written. "
                    "Run segsync sync again to re-create it",
                    platform=PLATFORM,
                    operation="contacts.import",
                )
            spec = self._specs.get(key)
            mismatch = mapping.field_mismatch(spec, mapping.remote_field(attr)) if spec else None
            kind = mapping.attribute_kind(attr)
            if mismatch or kind not in ("text", "float", "date", "category"):
                raise ConflictError(
                    mismatch or f"Brevo attribute {name} has type {kind}, which segsync does not write",
                    platform=PLATFORM,
                    operation="contacts.import",
                )
            shapes[key] = (name, kind, self._codes(key, attr))
        return shapes

    def _chunks(
        self, items: Sequence[tuple[ContactUpdate, dict[str, Any]]]
    ) -> Iterator[list[tuple[ContactUpdate, dict[str, Any]]]]:
        """Split so each import body stays under ``import_max_bytes``."""
        budget = self.settings.import_max_bytes - 1024  # the envelope around jsonBody
        chunk: list[tuple[ContactUpdate, dict[str, Any]]] = []
        size = 0
        for update, values in items:
            item_size = (
                len(json.dumps({"email": update.email, "attributes": values}, ensure_ascii=False).encode())
                + 1
            )
            if chunk and size + item_size > budget:
                yield chunk
                chunk, size = [], 0
            chunk.append((update, values))
            size += item_size
        if chunk:
            yield chunk

    def _import(
        self, chunk: Sequence[tuple[ContactUpdate, dict[str, Any]]], *, erase: bool
    ) -> tuple[float, int]:
        """Send one import; return (Brevo's clock when it was accepted, process id)."""
        list_id = self._import_list()
        body = [ImportContactsRequestJsonBodyItem(email=u.email, attributes=values) for u, values in chunk]
        reply = self._call(
            "contacts.import",
            lambda: self.sdk.contacts.with_raw_response.import_contacts(
                json_body=body,
                list_ids=[list_id],
                update_existing_contacts=True,
                empty_contacts_attributes=erase,
                disable_notification=True,
                request_options=NO_RETRY,
            ),
            write=True,
        )
        server_time = parse_http_date(reply.server_time)
        return (server_time if server_time is not None else time.time()), int(reply.body["processId"])

    def _await_process(self, process: int) -> tuple[bool, bool]:
        """Poll the import until it completes, backing off (each poll spends the hourly budget).

        Returns (completed, problems): Brevo's report of a completed import names files of
        invalid or duplicate rows; it does not say which, so problems call for a read-back.
        """
        delay = self.settings.import_poll_initial
        waited = 0.0
        while True:
            self.runner.clock.sleep(delay)
            waited += delay
            body = self._call(
                "processes.get",
                lambda: self.sdk.process.with_raw_response.get_process(process, request_options=NO_RETRY),
                bucket=OTHER,
            ).body
            status = (body or {}).get("status")
            if status == "completed":
                report = ((body or {}).get("info") or {}).get("import") or {}
                return True, any(report.values())
            if status in ("failed", "cancelled") or waited >= self.settings.import_timeout:
                return False, True
            delay = min(delay * 2, self.settings.import_poll_max)

    def _verify(
        self,
        updates: Sequence[ContactUpdate],
        shapes: Mapping[str, tuple[str, str, dict[str, int]]],
        started: float,
        *,
        full: bool,
    ) -> dict[str, str]:
        """A failure reason per imported contact that did not take.

        Always: contacts the imports *created* (Brevo creates one for an email it does not
        know: the contact pulled was deleted or changed its email since) are found and deleted
        again. With ``full`` (Brevo reported problems, or ``import_readback = "always"``), or
        when such a contact was found (emails moved since the pull: one may now be another
        contact's, which the import then wrote instead): every written value is read back.
        """
        list_id = self._import_list()
        since = mapping.format_since(
            dt.datetime.fromtimestamp(started - self.settings.readback_skew, tz=dt.UTC)
        )
        by_id = {u.contact_id: u for u in updates}
        by_email = {str(u.email).casefold(): u for u in updates}
        reasons: dict[str, str] = {}
        for raw in list(self._import_list_contacts(list_id, created_since=since)):
            owner = by_email.get(str(raw.get("email") or "").casefold())
            if owner is not None and str(raw.get("id")) not in by_id:
                # Undo the creation rather than resurrect a contact deleted since the pull.
                self._delete_contact(str(raw["id"]))
                reasons[owner.contact_id] = (
                    f"Brevo has no contact {owner.contact_id} with this email any more (deleted or changed "
                    f"since the pull); the import created contact {raw['id']} for it, which segsync deleted "
                    "again"
                )
        if not (full or reasons):
            return reasons
        stored: dict[str, Mapping[str, Any]] = {}
        for raw in self._import_list_contacts(list_id, modified_since=since):
            rid = str(raw.get("id"))
            owner = by_email.get(str(raw.get("email") or "").casefold())
            if owner is not None and owner.contact_id != rid:
                reasons.setdefault(
                    owner.contact_id,
                    f"its email moved to contact {rid} since the pull, so the import wrote contact {rid} "
                    f"instead; contact {owner.contact_id} is written on the next sync",
                )
            if rid in by_id:
                stored[rid] = raw.get("attributes") or {}
        for update in updates:
            if update.contact_id not in reasons:
                problem = self._readback(update, stored.get(update.contact_id), shapes)
                if problem:
                    reasons[update.contact_id] = problem
        return reasons

    def _readback(
        self,
        update: ContactUpdate,
        attributes: Mapping[str, Any] | None,
        shapes: Mapping[str, tuple[str, str, dict[str, int]]],
    ) -> str | None:
        """Why ``update`` did not take, from the attributes read back (None: not seen modified)."""
        if attributes is None:
            # Not seen as modified (clock skew, or nothing changed): look at it directly.
            contact = self._contact(update.contact_id)
            if contact is None:
                return "contact no longer exists in Brevo"
            attributes = contact.get("attributes") or {}
        wrong = [
            shapes[key][0]
            for key, value in update.values.items()
            if not self._stored(value, attributes.get(shapes[key][0]), shapes[key])
        ]
        return f"Brevo did not store {', '.join(wrong)} (the import ignored the value)" if wrong else None

    def _import_list_contacts(
        self, list_id: int, *, created_since: str | None = None, modified_since: str | None = None
    ) -> Iterator[Mapping[str, Any]]:
        return _flat(
            self._contact_pages(
                list_ids=[list_id], created_since=created_since, modified_since=modified_since
            )
        )

    def _delete_contact(self, contact_id: str) -> None:
        self._call(
            "contacts.delete",
            lambda: self.sdk.contacts.with_raw_response.delete_contact(
                contact_id, identifier_type="contact_id", request_options=NO_RETRY
            ),
            write=True,
        )

    @staticmethod
    def _stored(value: FieldValue, raw: Any, shape: tuple[str, str, dict[str, int]]) -> bool:
        _, kind, codes = shape
        found = mapping.decode_value(kind, raw, {code: option for option, code in codes.items()})
        if value is None:
            return found is None
        return found is not None and mapping.same_value(value, found)

    # -- costs --------------------------------------------------------------------------------

    def call_cost(self, kind: CostKind, records: int) -> Mapping[str, int]:
        """API calls per rate bucket; ``other`` is the scarce hourly one (see docs/platforms/brevo.md)."""
        s = self.settings
        n = max(0, records)
        if kind == "pull_contacts":
            return {CONTACTS: _pages(n, s.contacts_page) + 1}
        if kind == "pull_purchases":
            if s.purchases == "orders":
                return {OTHER: _pages(n, s.orders_page)}
            catalogue = 0 if s.close_date_attribute and s.currency_attribute else 1
            return {OTHER: _pages(n, s.deals_page) + 1 + catalogue}
        if n == 0:
            return {}
        if kind in ("create_field", "update_field"):
            return {CONTACTS: n + 1}
        # One-time lookups (and creates) of the folder and the import list, until known.
        folder = 0 if self._folder_id is not None else 2
        if kind == "create_list":
            return {CONTACTS: n + folder}
        if kind == "write_fields":
            if n <= s.put_max:
                return {CONTACTS: 1 + n}
            # contacts without email go one by one: as many as the last pull suggests
            known = len(self._emails)
            puts = round(n * sum(1 for e in self._emails.values() if not e) / known) if known else 0
            ensure = puts + (0 if self._import_list_id is not None else folder + 2)
            imports = max(
                math.ceil(n / s.write_batch), math.ceil(n * IMPORT_BYTES_PER_CONTACT / s.import_max_bytes)
            )
            readback = _pages(n, s.contacts_page) if s.import_readback == "always" else 0
            return {
                CONTACTS: 1 + ensure + imports + 1 + readback,
                OTHER: imports * s.expected_import_polls,
            }
        if kind in ("add_members", "remove_members"):
            return {CONTACTS: math.ceil(n / MEMBERSHIP_BATCH)}
        if kind == "read_members":
            return {CONTACTS: _pages(n, MEMBERS_PAGE)}
        return {}


__all__ = ["BrevoPlatform"]
