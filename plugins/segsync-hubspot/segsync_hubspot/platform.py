"""HubSpot as a segsync :class:`~segsync.sync.platform.Platform`.

Calls and their costs (crm-api-facts §1.12): contacts and deals are read in GET pages of 100,
deal→contact associations with the v4 batch read (1000 deals a call, plus one more input per
deal whose contacts overflow a page), properties are written with batch/update (100 contacts a
call) and list memberships with add-and-remove. HubSpot property names are segsync's neutral
field keys unchanged.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import SecretStr

from segsync import (
    CallRunner,
    ConflictError,
    Contact,
    ContactGone,
    ContactUpdate,
    CostKind,
    CursorPaging,
    FieldSpec,
    ListSpec,
    PermanentError,
    PermissionDenied,
    PlatformLimits,
    PlatformSettings,
    PullProgress,
    Purchase,
    PurchaseRetracted,
    RateWindow,
    RecordFailure,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync_hubspot import mapping
from segsync_hubspot.client import PLATFORM, SEARCH_BUCKET, HubSpotClient
from segsync_hubspot.config import HubSpotSettings
from segsync_hubspot.pulls import ASSOCIATION_BATCH, PAGE_SIZE, Pulls, pages

if TYPE_CHECKING:
    from segsync import PlatformManifest
    from segsync.sandbox import Sandbox
    from segsync_hubspot.webhooks import HubSpotWebhooks

#: Scopes needed, limits obeyed and objects created, for ``segsync check`` and the docs.
MANIFEST_PATH = Path(__file__).with_name("manifest.toml")

WRITE_BATCH = 100  # batch/update maximum
MEMBERSHIP_PAGE = 250  # list memberships GET maximum
#: Write batches in flight at once at most (the project's ``concurrency`` caps it): four calls
#: of ~150 ms keep up with 19 a second.
WRITE_CONCURRENCY = 4
#: Lists asked for by id in one GET: HubSpot states no maximum, so a modest one (the URL grows).
LISTS_BY_ID = 50
CONTACTS = "contacts"

#: Scopes segsync needs, each with the cheapest call proving it (see ``check``).
SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.deals.read",
    "crm.schemas.contacts.read",
    "crm.lists.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.write",
    "crm.lists.write",
)


class Probe(NamedTuple):
    """The cheapest call proving one scope; HubSpot checks scopes before it reads the body."""

    scope: str
    operation: str
    api: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = MappingProxyType({})
    ok: tuple[int, ...] = (200,)


#: Reads of one record, and writes of nothing: empty batches, an add-and-remove to list 0.
SCOPE_PROBES = (
    Probe("crm.objects.contacts.read", "check.contacts", "contacts", "get_page", kwargs={"limit": 1}),
    Probe("crm.objects.deals.read", "check.deals", "deals", "get_page", kwargs={"limit": 1}),
    Probe("crm.schemas.contacts.read", "check.properties", "groups", "get_all", (CONTACTS,)),
    Probe("crm.lists.read", "check.lists", "lists", "get_all", kwargs={"list_ids": ["0"]}),
    Probe(
        "crm.objects.contacts.write",
        "check.contacts.write",
        "contacts_batch",
        "update",
        ({"inputs": []},),
        ok=(200, 207),
    ),
    Probe(
        "crm.schemas.contacts.write",
        "check.properties.write",
        "properties_batch",
        "create",
        (CONTACTS, {"inputs": []}),
        ok=(201, 207),
    ),
    Probe(
        "crm.lists.write",
        "check.lists.write",
        "memberships",
        "add_and_remove",
        ("0", {"recordIdsToAdd": [], "recordIdsToRemove": []}),
    ),
)


class HubSpotPlatform:
    """One HubSpot portal, reached with a private-app token."""

    name: ClassVar[str] = "hubspot"
    display_name: ClassVar[str] = "HubSpot"
    Settings: ClassVar[type[PlatformSettings]] = HubSpotSettings
    secret_env: ClassVar[str] = "SEGSYNC_HUBSPOT_TOKEN"  # noqa: S105 - a variable name, not a secret
    memberships_inline: ClassVar[bool] = False
    dynamic_lists: bool = False  # set per instance from settings where the CRM can
    incremental_purchases: bool = True
    incremental_contacts: bool = True

    def __init__(self, settings: HubSpotSettings, client: HubSpotClient) -> None:
        self.settings = settings
        self.client = client
        self.runner: CallRunner = client.runner
        # batch writes share no step (each names its contacts or list): safe in parallel
        self.limits = PlatformLimits(
            write_batch=WRITE_BATCH, membership_batch=settings.membership_batch, concurrency=WRITE_CONCURRENCY
        )
        self.incremental_purchases = self.incremental_contacts = settings.incremental
        # DYNAMIC lists filter on the segment property: HubSpot keeps their members itself.
        self.dynamic_lists = settings.list_type == "DYNAMIC"
        self.pulls = Pulls(settings, client)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def rate_buckets(cls, settings: PlatformSettings) -> Mapping[str, Sequence[RateWindow]]:
        hs = _settings(settings)
        return {
            "default": [
                RateWindow(requests=hs.rate_limit_per_10s, seconds=10.0),
                RateWindow(requests=hs.rate_limit_per_day, seconds=86_400.0),
            ],
            SEARCH_BUCKET: [RateWindow(requests=hs.search_per_second, seconds=1.0)],
        }

    @classmethod
    def create(cls, settings: PlatformSettings, *, secret: SecretStr, runner: CallRunner) -> HubSpotPlatform:
        hs = _settings(settings)
        return cls(hs, HubSpotClient(hs, secret, runner))

    @classmethod
    def sandbox(cls) -> type[Sandbox]:
        from segsync_hubspot.sandbox import HubSpotSandbox

        return HubSpotSandbox

    @classmethod
    def webhook_receiver(cls) -> HubSpotWebhooks:
        """The v3 signature check and event parser ``segsync serve`` uses."""
        from segsync_hubspot.webhooks import HubSpotWebhooks

        return HubSpotWebhooks()

    @classmethod
    def manifest(cls) -> PlatformManifest:
        from segsync import load_platform_manifest

        return load_platform_manifest(MANIFEST_PATH)

    def close(self) -> None:
        self.client.close()

    # -- check ---------------------------------------------------------------------------

    def account_id(self) -> str:
        """The portal id (account-info API, crm-api-facts §1.13): every portal shares one host."""
        details = self.client.get_json("account.details", "/account-info/v3/details")
        portal = details.get("portalId")
        if isinstance(portal, bool) or not isinstance(portal, int) or portal <= 0:
            raise PermanentError(
                "HubSpot's account details carry no portal id; check the token with `segsync check`",
                platform=PLATFORM,
                operation="account.details",
            )
        return str(portal)

    def check(self) -> list[str]:
        """Prove the token and every scope with read calls and writes that change nothing.

        The write probes send empty batches (and an add-and-remove of nothing to list id 0):
        HubSpot checks scopes before the body, so 403 means the scope is missing and any other
        answer means it is granted.
        """
        missing: list[str] = []
        for probe in SCOPE_PROBES:
            try:
                self.client.call(
                    probe.operation, probe.api, probe.method, *probe.args, ok=probe.ok, **probe.kwargs
                )
            except PermissionDenied as err:
                missing.extend(err.required_scopes or (probe.scope,))
            except PermanentError:
                pass  # the call got past the scope check: that is all a probe asks
        if missing:
            raise PermissionDenied(
                "the HubSpot private app lacks scopes segsync needs; add them under "
                "Settings > Integrations > Private apps and use the new token",
                required_scopes=list(dict.fromkeys(missing)),
                platform=PLATFORM,
                operation="check",
            )
        s = self.settings
        return [
            f"token accepted by {self.client.host}",
            f"scopes granted: {', '.join(SCOPES)}",
            f"lists are {s.list_type}; rate budget {s.rate_limit_per_10s}/10 s, {s.rate_limit_per_day:,}/day",
        ]

    # -- pulls ---------------------------------------------------------------------------

    @staticmethod
    def _pages(
        operation: str, fetch: Callable[[str | None], Mapping[str, Any]]
    ) -> Iterator[Mapping[str, Any]]:
        """Follow ``paging.next.after`` until it is absent, with segsync's loop guards."""
        return CursorPaging(PLATFORM, operation, vendor="HubSpot").pages(fetch)

    def iter_contacts(
        self,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
    ) -> Iterator[Contact | Rejection]:
        return self.pulls.contacts(properties, managed, lists)

    @property
    def contacts_newest(self) -> dt.datetime | None:
        return self.pulls.contacts_newest

    def iter_changed_contacts(
        self,
        since: dt.datetime,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
        *,
        reread: bool,
    ) -> Iterator[Contact | ContactGone | Rejection]:
        """By CRM search on ``createdate`` (``lastmodifieddate`` with ``reread``: segsync's
        own writes move it, so only rules reading changing properties pay for re-reads),
        then the archived listing."""
        return self.pulls.changed_contacts(since, properties, managed, reread=reread)

    def iter_purchases(
        self, since: dt.datetime | None
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection | PullProgress]:
        """Closed-won deals, one purchase per associated contact; with ``since`` (and the
        ``incremental`` setting), the deals changed since then, by CRM search, with a
        watermark after each batch."""
        return self.pulls.purchases(since)

    # -- fields --------------------------------------------------------------------------

    def _properties(self) -> dict[str, RemoteField]:
        answer = self.client.call("properties.list", "properties", "get_all", CONTACTS)
        return {str(p["name"]): mapping.remote_field(p) for p in answer.get("results") or ()}

    def inspect_fields(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        remote = self._properties()
        return {spec.key: remote.get(spec.key) for spec in specs}

    def _ensure_group(self) -> None:
        s = self.settings
        groups = self.client.call("groups.list", "groups", "get_all", CONTACTS)
        if any(g.get("name") == s.property_group for g in groups.get("results") or ()):
            return
        try:
            self.client.call(
                "groups.create",
                "groups",
                "create",
                CONTACTS,
                mapping.group_body(s.property_group, s.property_group_label),
                write=True,
                ok=(201,),
            )
        except PermanentError as err:
            if err.status != 409:  # 409: a create whose answer was lost already made it
                raise

    def create_fields(self, specs: Sequence[FieldSpec]) -> None:
        if not specs:
            return
        self._ensure_group()
        for start in range(0, len(specs), WRITE_BATCH):
            chunk = specs[start : start + WRITE_BATCH]
            answer = self.client.call(
                "properties.create",
                "properties_batch",
                "create",
                CONTACTS,
                {"inputs": [mapping.property_body(spec, self.settings.property_group) for spec in chunk]},
                write=True,
                ok=(201, 207),
            )
            if answer.get("errors"):
                self._settle_create_errors(chunk, answer)

    def _settle_create_errors(self, specs: Sequence[FieldSpec], answer: Mapping[str, Any]) -> None:
        """A 207 on create: properties that now exist with the right type are fine, others are not."""
        created = {str(r.get("name")) for r in answer.get("results") or ()}
        remote = self._properties()
        for spec in specs:
            if spec.key in created:
                continue
            existing = remote.get(spec.key)
            if existing is None:
                reasons = "; ".join(mapping.error_reason(e) for e in answer.get("errors") or ())
                raise PermanentError(
                    f"HubSpot did not create property {spec.key!r}: {reasons}",
                    platform=PLATFORM,
                    operation="properties.create",
                )
            conflict = mapping.field_conflict(spec, existing)
            if conflict:
                raise ConflictError(conflict, platform=PLATFORM, operation="properties.create")

    def update_field_options(self, spec: FieldSpec) -> None:
        self.client.call(
            "properties.update",
            "properties",
            "update",
            CONTACTS,
            spec.key,
            {"options": mapping.options_body(spec)},
            write=True,
        )

    def field_matches(self, spec: FieldSpec, remote: RemoteField) -> str | None:
        return mapping.field_conflict(spec, remote)

    # -- lists ---------------------------------------------------------------------------

    def _list_or_none(self, operation: str, method: str, *args: str) -> RemoteList | None:
        try:
            answer = self.client.call(operation, "lists", method, *args)
        except PermanentError as err:
            if err.status == 404:
                return None
            raise
        return mapping.remote_list(answer["list"])

    def get_list(self, list_id: str) -> RemoteList | None:
        return self._list_or_none("lists.get", "get_by_id", list_id)

    def get_lists(self, list_ids: Sequence[str]) -> Mapping[str, RemoteList | None]:
        """``GET /crm/v3/lists/?listIds=...``, LISTS_BY_ID ids a call; a deleted list is absent."""
        found: dict[str, RemoteList | None] = dict.fromkeys(list_ids)
        for start in range(0, len(list_ids), LISTS_BY_ID):
            part = list(list_ids[start : start + LISTS_BY_ID])
            answer = self.client.call("lists.get_many", "lists", "get_all", list_ids=part)
            for raw in answer.get("lists") or ():
                remote = mapping.remote_list(raw)
                if remote.id in found and not raw.get("deletedAt"):
                    found[remote.id] = remote
        return found

    def find_list(self, name: str) -> RemoteList | None:
        """HubSpot matches list names case-insensitively, and so does this lookup."""
        return self._list_or_none("lists.find", "get_by_name", name, mapping.CONTACTS_OBJECT_TYPE_ID)

    def create_list(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        body = mapping.list_body(spec, dynamic=dynamic)
        try:
            answer = self.client.call("lists.create", "lists", "create", body, write=True)
        except PermanentError as err:
            # A duplicate name: either our own create whose answer was lost, or a list someone
            # else owns. Only a list of the requested kind is taken over.
            if err.status not in (400, 409):
                raise
            existing = self.find_list(spec.name)
            if existing is None:
                raise
            if existing.dynamic != dynamic:
                raise ConflictError(
                    f"a HubSpot list named {existing.name!r} already exists as "
                    f"{'DYNAMIC' if existing.dynamic else 'MANUAL'}; rename it or change list_type",
                    platform=PLATFORM,
                    operation="lists.create",
                ) from None
            return existing
        return mapping.remote_list(answer["list"])

    def list_members(self, list_id: str) -> Iterator[str]:
        def fetch(after: str | None) -> Mapping[str, Any]:
            kw: dict[str, Any] = {"limit": MEMBERSHIP_PAGE}
            if after:
                kw["after"] = after
            return self.client.call("lists.members", "memberships", "get_page", list_id, **kw)  # type: ignore[no-any-return]

        for page in pages("lists.members", fetch):
            for row in page.get("results") or ():
                yield str(row["recordId"])

    def change_members(self, list_id: str, add: Sequence[str], remove: Sequence[str]) -> WriteResult:
        """One ``add-and-remove`` call for both (``lists.add``/``lists.remove`` when one is empty)."""
        adds, removes = [str(i) for i in add], [str(i) for i in remove]
        if not adds and not removes:
            return WriteResult()
        body = {"recordIdsToAdd": adds, "recordIdsToRemove": removes}
        answer = self.client.call(
            "lists.change" if adds and removes else "lists.add" if adds else "lists.remove",
            "memberships",
            "add_and_remove",
            list_id,
            body,
            write=True,
        )
        missing = answer.get("recordIdsMissing") or ()
        added = mapping.membership_result(adds, missing, adding=True)
        removed = mapping.membership_result(removes, missing, adding=False)
        return WriteResult(ok=added.ok + removed.ok, failed=added.failed + removed.failed)

    def add_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self.change_members(list_id, contact_ids, ())

    def remove_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self.change_members(list_id, (), contact_ids)

    # -- writes --------------------------------------------------------------------------

    def write_fields(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        merged: dict[str, dict[str, str]] = {}
        for u in updates:  # HubSpot refuses a batch naming one id twice
            merged.setdefault(u.contact_id, {}).update(
                {k: mapping.format_value(v) for k, v in u.values.items()}
            )
        return self._write(list(merged.items())) if merged else WriteResult()

    def _write(self, items: Sequence[tuple[str, dict[str, str]]]) -> WriteResult:
        """One batch/update; a whole batch refused for bad values is split until the bad records stand alone.

        HubSpot documents 207 per-record errors, but whether one invalid value can fail a whole
        batch/update with 400 is not confirmed; halving costs calls only when that happens.
        """
        body = {"inputs": [{"id": cid, "properties": props} for cid, props in items]}
        try:
            answer = self.client.call(
                "contacts.write", "contacts_batch", "update", body, write=True, ok=(200, 207)
            )
        except PermanentError as err:
            if err.status != 400 or err.category != "VALIDATION_ERROR":
                raise
            if len(items) == 1:
                reason = "VALIDATION_ERROR (HubSpot refused this record's values)"
                return WriteResult(failed=(RecordFailure(record_id=items[0][0], reason=reason),))
            half = len(items) // 2
            first, second = self._write(items[:half]), self._write(items[half:])
            return WriteResult(ok=first.ok + second.ok, failed=first.failed + second.failed)
        return mapping.batch_result([cid for cid, _ in items], answer)

    # -- costs ---------------------------------------------------------------------------

    def call_cost(self, kind: CostKind, records: int) -> Mapping[str, int]:
        def per(batch: int) -> int:
            return math.ceil(records / batch) if records > 0 else 0

        calls = {
            "pull_contacts": max(1, per(PAGE_SIZE)),
            # pipelines + deal pages + association reads (won deals are at most all deals)
            "pull_purchases": 1 + max(1, per(PAGE_SIZE)) + per(ASSOCIATION_BATCH),
            # group lookup (+ create once) and one batch per 100 properties
            "create_field": (2 + per(WRITE_BATCH)) if records else 0,
            "update_field": records,
            "create_list": records,
            "write_fields": per(WRITE_BATCH),
            "add_members": per(self.limits.membership_batch),
            "remove_members": per(self.limits.membership_batch),
            "read_members": max(1, per(MEMBERSHIP_PAGE)),
        }[kind]
        return {"default": calls}


def _settings(settings: PlatformSettings) -> HubSpotSettings:
    if isinstance(settings, HubSpotSettings):
        return settings
    return HubSpotSettings.model_validate(settings.model_dump())
