"""The Platform protocol: everything the engine may ask of a CRM, and nothing more.

A platform plugin registers a class satisfying :class:`Platform` through the
``register_platforms`` hook. The engine talks to CRMs only through these methods. Each method
makes its SDK calls through ``self.runner.call(...)`` (one call per ``call``), which is where
throttling and retries happen; SDK-level retries stay off.

Conventions every implementation follows (the contract suite in :mod:`segsync.testing`
checks them):

* Pulls are generators that page internally and yield records as they come, with per-record
  problems yielded as :class:`~segsync.core.models.Rejection` instead of raised.
* ``FieldSpec.key`` and ``ListSpec.key`` are platform-neutral; the platform maps them to its
  own names. Contacts yielded by ``iter_contacts`` carry the current values of the requested
  managed fields in ``Contact.managed``, parsed back into core types, so re-planning against
  the CRM compares like with like.
* Writes take at most ``limits.write_batch`` / ``limits.membership_batch`` records and return
  a :class:`~segsync.core.models.WriteResult` naming every record that failed and why; a whole-call
  failure raises a :mod:`segsync.errors` error. Writes are idempotent: sending the same batch
  twice leaves the CRM as sending it once.
* Errors never carry SDK exception text (it holds headers and CRM bodies).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from segsync.core.cost import CostKind as CostKind  # re-exported: part of the protocol
from segsync.core.cost import RateWindow
from segsync.core.models import (
    Contact,
    ContactGone,
    ContactUpdate,
    FieldSpec,
    ListSpec,
    PullProgress,
    Purchase,
    PurchaseRetracted,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync.errors import ConfigError
from segsync.sync.runner import CallRunner


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an API base URL, or None. Never quotes what may hold a secret."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password: credentials come from the environment"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment (secrets come from the environment, never the URL)"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} must start with http:// or https:// (write it as https://{url.split('://')[-1]})"
    if not parts.hostname:
        return f"{url!r} names no host"
    return None


class PlatformSettings(BaseModel):
    """Base for each plugin's ``[platforms.<name>]`` settings. Secrets never live here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description="API base URL; default the real API")
    timeout: float = Field(30.0, gt=0, description="seconds before one HTTP call is abandoned")

    @field_validator("base_url")
    @classmethod
    def _usable_base_url(cls, value: str | None) -> str | None:
        """Checked before any call: a URL with a query string or no scheme fails obscurely later."""
        if value is None:
            return None
        value = value.strip()
        problem = base_url_problem(value)
        if problem:
            # Not a ValueError: pydantic lets it through as is, so the platform's own create()
            # and connect() both surface it as the one-line ConfigError it is.
            raise ConfigError(f"base_url {problem}")
        return value


class PlatformLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    write_batch: int = Field(gt=0, description="contacts per field-write call")
    membership_batch: int = Field(gt=0, description="contacts per list add/remove call")
    #: How many write batches may be in flight at once. 1 unless the platform's writes are safe
    #: to send in parallel (no shared step such as Brevo's import list); the project's
    #: ``concurrency`` caps it.
    concurrency: int = Field(1, ge=1, le=16, description="write batches in flight at once")


PurchaseRecord = Purchase | PurchaseRetracted | Rejection | PullProgress


@runtime_checkable
class ResumablePurchases(Protocol):
    """A platform whose purchase pull hands out a page token (Brevo's offsets): after each page,
    ``resume_tokens["purchases"]`` says where the pull stands, and ``iter_purchases(since,
    resume=token)`` goes on from there. The engine then saves progress whatever the order the
    CRM yields purchases in, so a pull spread over several jobs always finishes."""

    resume_tokens: dict[str, str]

    def iter_purchases(
        self, since: dt.datetime | None, *, resume: str | None = None
    ) -> Iterator[PurchaseRecord]:
        """``Platform.iter_purchases``, from ``resume`` when given."""


ContactRecord = Contact | ContactGone | Rejection


@runtime_checkable
class IncrementalContacts(Protocol):
    """A platform that can say which contacts changed since a moment (HubSpot's CRM search,
    Brevo's ``createdSince``/``modifiedSince``). The engine keeps the contacts of the last pull
    in the state store and, between periodic full pulls, asks only for what changed.

    ``contacts_newest`` is the newest change (creation or modification, as the pull filtered)
    among the contacts the last ``iter_contacts`` or ``iter_changed_contacts`` yielded, None
    when it yielded none or the CRM did not say: the engine's next cursor comes from it.
    """

    #: False turns incremental contact pulls off (an instance may set it from its settings).
    incremental_contacts: bool
    contacts_newest: dt.datetime | None

    def iter_changed_contacts(
        self,
        since: dt.datetime,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
        *,
        reread: bool,
    ) -> Iterator[ContactRecord]:
        """Contacts created at or after ``since`` as ``iter_contacts`` yields them; with
        ``reread``, also every contact modified since (the rules read properties that may
        change); then a :class:`ContactGone` for each contact deleted since, where the CRM can
        tell. A platform whose own writes depend on what may change (Brevo imports by e-mail)
        reads modified contacts whatever ``reread`` says."""


@runtime_checkable
class MembershipChanges(Protocol):
    """A platform that adds and removes members of one list in one call (HubSpot's
    add-and-remove): a list whose members come and go costs one call, not two."""

    def change_members(self, list_id: str, add: Sequence[str], remove: Sequence[str]) -> WriteResult:
        """Add ``add`` and remove ``remove`` (together at most ``limits.membership_batch``)."""


@runtime_checkable
class ListsById(Protocol):
    """A platform that reads many lists by id in one call (HubSpot ``GET /crm/v3/lists``)."""

    def get_lists(self, list_ids: Sequence[str]) -> Mapping[str, RemoteList | None]:
        """Each id's list, or None for a list that was deleted."""


@runtime_checkable
class Platform(Protocol):
    """A CRM account segsync reads from and writes to."""

    #: Registry name, also the ``[platforms.<name>]`` table and the env-var infix.
    name: ClassVar[str]
    display_name: ClassVar[str]
    #: pydantic model validating ``[platforms.<name>]``.
    Settings: ClassVar[type[PlatformSettings]]
    #: Environment variable holding the credential (token / API key).
    secret_env: ClassVar[str]
    #: True when contacts carry their list memberships inline (no member reads needed).
    memberships_inline: ClassVar[bool]
    #: True when ``iter_purchases(since=...)`` returns only what changed since then (a class
    #: default is fine; an instance may set it from its settings).
    incremental_purchases: bool

    limits: PlatformLimits
    runner: CallRunner
    #: True asks the engine to create lists that filter on ``ListSpec.filter_field`` and to
    #: leave their membership to the CRM (HubSpot DYNAMIC lists); a class default of False
    #: is fine, an instance may set it from its settings.
    dynamic_lists: bool

    @classmethod
    def rate_buckets(cls, settings: PlatformSettings) -> Mapping[str, Sequence[RateWindow]]:
        """The account's rate windows per bucket, from settings (plans differ)."""

    @classmethod
    def create(cls, settings: PlatformSettings, *, secret: SecretStr, runner: CallRunner) -> Platform:
        """Build a client for one account. Must not make network calls."""

    @classmethod
    def sandbox(cls) -> type[Any] | None:
        """The loopback emulator class for this platform (a :class:`segsync.sandbox.Sandbox`), or None.

        Typed loosely on purpose: the sync wing never imports the sandboxes, not even for types.
        """

    def account_id(self) -> str:
        """The CRM's own id of the account the credential belongs to (one cheap call).

        Stable for the account and never secret: the state store keeps everything (list ids,
        cursors, cached purchases, locks) under it, so a project pointed at another account
        never reuses what it remembered for the first. Never derive it from the API host
        (every HubSpot portal shares one) or from the credential itself.
        """

    def check(self) -> list[str]:
        """Verify credential and permissions with the cheapest calls; return notes for the user.

        Raises AuthError / PermissionDenied (naming missing scopes) when access is wrong.
        """

    def iter_contacts(
        self,
        properties: Sequence[str],
        managed: Sequence[FieldSpec],
        lists: Mapping[str, str],
    ) -> Iterator[Contact | Rejection]:
        """Every live contact with ``properties`` (neutral names) and current managed values.

        ``lists`` maps list keys to remote list ids; platforms with ``memberships_inline`` fill
        ``Contact.lists`` from it.
        """

    def iter_purchases(self, since: dt.datetime | None) -> Iterator[PurchaseRecord]:
        """Won purchases; with ``since`` and ``incremental_purchases``, only changes after it.

        A pull in modification order may yield a :class:`PullProgress` watermark after each
        batch, so the cursor moves past records that are no purchase."""

    def inspect_fields(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        """What exists in the CRM under each spec's platform name (None if absent), by spec key."""

    def create_fields(self, specs: Sequence[FieldSpec]) -> None:
        """Create missing fields (and the "segsync" group/folder they live in)."""

    def update_field_options(self, spec: FieldSpec) -> None:
        """Make an existing enumeration field carry exactly ``spec.options`` (adds new segments)."""

    def field_matches(self, spec: FieldSpec, remote: RemoteField) -> str | None:
        """None if ``remote`` can hold ``spec``'s values, else a one-line reason (a conflict)."""

    def get_list(self, list_id: str) -> RemoteList | None:
        """The list with this id, or None if it was deleted."""

    def find_list(self, name: str) -> RemoteList | None:
        """The list with this name (the CRM's own name matching rules), or None."""

    def create_list(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        """Create a list; ``dynamic`` only on platforms that can filter on ``spec.filter_field``."""

    def list_members(self, list_id: str) -> Iterator[str]:
        """Contact ids currently in the list."""

    def add_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        """Add contacts (at most ``limits.membership_batch``); members already in count as ok."""

    def remove_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        """Remove contacts (at most ``limits.membership_batch``); non-members count as ok."""

    def write_fields(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        """Write managed field values (at most ``limits.write_batch`` contacts); None clears."""

    def call_cost(self, kind: CostKind, records: int) -> Mapping[str, int]:
        """API calls, per rate bucket, that ``kind`` over ``records`` records will cost."""

    def close(self) -> None:
        """Release connections."""


__all__ = [
    "ContactRecord",
    "CostKind",
    "IncrementalContacts",
    "ListsById",
    "MembershipChanges",
    "Platform",
    "PlatformLimits",
    "PlatformSettings",
    "PurchaseRecord",
    "ResumablePurchases",
    "WriteResult",
    "Contact",
    "Rejection",
]
