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

:class:`BrevoPlatform` composes one part per concern, all on one
:class:`~segsync_brevo.session.BrevoSession`: :class:`~segsync_brevo.attributes.Attributes`
(segsync's fields), :class:`~segsync_brevo.lists.Lists` (folder, lists, memberships),
:class:`~segsync_brevo.pulls.Pulls` (contacts and purchases) and
:class:`~segsync_brevo.writes.Writes` (PUTs and verified imports).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import SecretStr

from segsync import (
    CallRunner,
    ConfigError,
    Contact,
    ContactGone,
    ContactUpdate,
    CostKind,
    FieldSpec,
    ListSpec,
    PermanentError,
    PlatformLimits,
    PlatformSettings,
    Purchase,
    PurchaseRetracted,
    RateWindow,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync_brevo import mapping
from segsync_brevo.attributes import Attributes
from segsync_brevo.client import NO_RETRY, PLATFORM, SECRET_ENV, BrevoClient
from segsync_brevo.config import BASE_URL_ENV, CONTACTS, DEFAULT_BASE_URL, OTHER, BrevoSettings
from segsync_brevo.lists import MEMBERS_PAGE, MEMBERSHIP_BATCH, Lists
from segsync_brevo.pulls import Pulls
from segsync_brevo.session import BrevoSession
from segsync_brevo.writes import Writes

if TYPE_CHECKING:
    from segsync import PlatformManifest
    from segsync.sandbox import Sandbox
    from segsync_brevo.webhooks import BrevoWebhooks

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")

#: Bytes per contact in an import body, for cost estimates (email + a dozen attributes).
IMPORT_BYTES_PER_CONTACT = 600


def _pages(records: int, size: int) -> int:
    """Requests an overlapping offset pull (see ``offset_pages``) makes for ``records`` items."""
    if records < size:
        return 1
    return 2 + (records - size) // (size - 1)


class BrevoPlatform:
    """One Brevo account."""

    name: ClassVar[str] = "brevo"
    display_name: ClassVar[str] = "Brevo"
    Settings: ClassVar[type[PlatformSettings]] = BrevoSettings
    secret_env: ClassVar[str] = SECRET_ENV
    memberships_inline: ClassVar[bool] = True
    dynamic_lists: bool = False  # Brevo lists never keep their own members
    incremental_purchases: bool = True
    #: Contacts by ``modifiedSince`` (whatever ``reread`` says: writes find contacts by e-mail,
    #: so a changed address must be read); Brevo lists no deleted contacts, so a deletion is
    #: seen by the periodic full pull (writes to a deleted contact go by id and fail cleanly).
    incremental_contacts: bool = True

    def __init__(self, settings: BrevoSettings, client: BrevoClient, runner: CallRunner) -> None:
        self.settings = settings
        self.client = client
        self.sdk = client.sdk
        self.runner = runner
        self.limits = PlatformLimits(write_batch=settings.write_batch, membership_batch=MEMBERSHIP_BATCH)
        self.session = BrevoSession(settings, client, runner)
        self.attributes = Attributes(self.session)
        self.lists = Lists(self.session)
        self.pulls = Pulls(self.session, self.attributes)
        self.writes = Writes(self.session, self.attributes, self.lists)
        #: Where each paused pull stands ("contacts", "purchases"); pass back as ``resume=``.
        self.resume_tokens: dict[str, str] = self.pulls.resume_tokens

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
        from segsync import load_platform_manifest

        return load_platform_manifest(MANIFEST_PATH)

    @classmethod
    def sandbox(cls) -> type[Sandbox] | None:
        from segsync_brevo.sandbox import BrevoSandbox

        return BrevoSandbox

    @classmethod
    def webhook_receiver(cls) -> BrevoWebhooks:
        """The token check and event parser ``segsync serve`` uses."""
        from segsync_brevo.webhooks import BrevoWebhooks

        return BrevoWebhooks()

    def close(self) -> None:
        self.client.close()

    # -- check --------------------------------------------------------------------------------

    def account_id(self) -> str:
        """The organisation the key belongs to (``GET /account``, crm-api-facts §2.12).

        ``organization_id`` when Brevo sends it; else the login e-mail, hashed so that no
        address reaches the state store or the logs.
        """
        body = self.session.call(
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
        catalogue = self.attributes.catalogue(refresh=True)
        ours = sorted(n for n in catalogue if n.startswith("SEGSYNC_"))
        windows = self.settings.rate_windows()
        notes = [
            f"API key accepted; the account has {len(catalogue)} contact attributes, "
            f"{len(ours)} of them segsync's",
            f"rate tier {self.settings.rate_tier}: contacts {windows[CONTACTS][0].requests}/s, "
            f"deals, orders and import status {windows[OTHER][0].requests}/hour",
        ]
        if self.settings.purchases == "deals":
            won = self.pulls.won_stages()
            notes.append(f"purchases: won deals in {', '.join(sorted(won.values()))}")
        else:
            self.session.call(
                "orders.list",
                lambda: self.sdk.ecommerce.with_raw_response.get_orders(limit=1, request_options=NO_RETRY),
                bucket=OTHER,
            )
            notes.append("purchases: eCommerce orders with status " + ", ".join(self.settings.order_statuses))
        return notes

    # -- pulls --------------------------------------------------------------------------------

    def iter_contacts(
        self,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
        *,
        modified_since: dt.datetime | None = None,
        resume: str | None = None,
    ) -> Iterator[Contact | Rejection]:
        """Every contact, oldest first; ``modified_since`` narrows to recent changes."""
        return self.pulls.contacts(properties, managed, lists, modified_since=modified_since, resume=resume)

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
        """``GET /contacts?modifiedSince=``: new contacts and changed ones (see ``incremental_contacts``)."""
        return self.pulls.contacts(properties, managed, lists, modified_since=since)

    def iter_purchases(
        self, since: dt.datetime | None, *, resume: str | None = None
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection]:
        """Won deals (or completed orders) as purchases, oldest first; with ``since``, the changes."""
        return self.pulls.purchases(since, resume=resume)

    # -- fields -------------------------------------------------------------------------------

    def inspect_fields(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        return self.attributes.inspect(specs)

    def field_matches(self, spec: FieldSpec, remote: RemoteField) -> str | None:
        return mapping.field_mismatch(spec, remote)

    def create_fields(self, specs: Sequence[FieldSpec]) -> None:
        """Create the missing attributes, and the folder and list imports need (first sync)."""
        self.attributes.create(specs)
        self.lists.import_list()

    def update_field_options(self, spec: FieldSpec) -> None:
        self.attributes.update_options(spec)

    def write_fields(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        """Write managed values: one ``PUT /contacts/{id}`` each for small batches, else imports.

        A PUT costs one call from the per-second contacts budget and nothing else; an import
        also costs its status polls from the scarce hourly budget, so it only pays off for
        many contacts (``put_max``). Contacts without an email cannot be imported (imports find
        contacts by email) and always go one by one.
        """
        return self.writes.write(updates)

    # -- lists --------------------------------------------------------------------------------

    def find_list(self, name: str) -> RemoteList | None:
        """The list with exactly this name; with duplicates, the oldest in segsync's folder."""
        return self.lists.find(name)

    def get_list(self, list_id: str) -> RemoteList | None:
        return self.lists.get(list_id)

    def get_lists(self, list_ids: Sequence[str]) -> Mapping[str, RemoteList | None]:
        return self.lists.get_many(list_ids)

    def create_list(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        return self.lists.create(spec, dynamic=dynamic)

    def list_members(self, list_id: str) -> Iterator[str]:
        return self.lists.members(list_id)

    def add_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self.lists.change(list_id, contact_ids, add=True)

    def remove_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self.lists.change(list_id, contact_ids, add=False)

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
        folder = 0 if self.lists.folder_id is not None else 2
        if kind == "create_list":
            return {CONTACTS: n + folder}
        if kind == "write_fields":
            if n <= s.put_max:
                return {CONTACTS: 1 + n}
            # contacts without email go one by one: as many as the last pull suggests
            known = len(self.session.emails)
            puts = round(n * sum(1 for e in self.session.emails.values() if not e) / known) if known else 0
            ensure = puts + (0 if self.lists.import_list_id is not None else folder + 2)
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
