"""An in-memory CRM (:class:`FakeCRM`) and a :class:`~segsync.sync.platform.Platform` over it.

:class:`FakePlatform` (registry name ``"fake"``) follows every convention of the protocol the
way a real plugin must: each request goes through ``runner.call`` exactly once, errors are
segsync errors, pulls page and yield rejections, writes enforce the batch maxima and report
per-record failures, values are stored as the CRM's strings and parsed back on pull. The core
tests the engine with it, and runs :class:`~segsync.testing.PlatformContract` on it so it stays
faithful.

Faults use the sandboxes' :class:`~segsync.sandbox.FaultPlan`: ``path_pattern`` is matched
against the operation name (``"contacts.update"``, ``"lists.create"``...), ``methods`` against
``"GET"`` for reads and ``"POST"`` for writes. ``"429"`` raises :class:`RateLimited` with the
plan's ``retry_after``; ``"500"``/``"502"``/``"503"``/``"timeout"``/``"drop"`` raise
:class:`TransientError` before anything is applied; ``"lost_response"`` applies the request,
then raises :class:`TransientError`. For example "two 429s with Retry-After 2, then fine"::

    crm.set_faults(FaultPlan(script=["429", "429"], retry_after=2, path_pattern="contacts.update"))

:meth:`FakeCRM.before` runs an action before a matching request (a contact deleted, a list
removed between pull and write), and the CRM enforces the same rate windows the platform
announces, answering 429 with the time to the window's reset.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import Field, SecretStr

from segsync.core.models import (
    Contact,
    ContactUpdate,
    FieldSpec,
    FieldValue,
    ListSpec,
    Purchase,
    PurchaseRetracted,
    RecordFailure,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync.core.plan import natural_key
from segsync.errors import (
    ConfigError,
    PermanentError,
)
from segsync.plugins.hookspecs import hookimpl
from segsync.plugins.registry import PlatformRegister
from segsync.sync.platform import CostKind, Platform, PlatformLimits, PlatformSettings
from segsync.sync.runner import CallRunner, RateWindow
from segsync.testing.fake_crm import (
    _EPOCH,
    GROUP,
    REMOTE_TYPES,
    FakeContact,
    FakeDeal,
    FakeField,
    FakeList,
    _valid,
)
from segsync.testing.fake_crm import FakeCRM as FakeCRM  # re-exported: the fake's two halves, one import

if TYPE_CHECKING:
    from segsync.sandbox import Sandbox

T = TypeVar("T")


class FakeSettings(PlatformSettings):
    """``[platforms.fake]``: which registered :class:`FakeCRM`, batch maxima and rate windows."""

    crm: str = Field("default", description="name a FakeCRM was registered under")
    write_batch: int = Field(10, gt=0, description="contacts per field-write call")
    membership_batch: int = Field(7, gt=0, description="contacts per list add/remove call")
    page_size: int = Field(25, gt=0, description="records per page when pulling")
    contacts_per_second: int = Field(20, gt=0, description="the 'contacts' bucket: calls per second")
    other_per_hour: int = Field(600, gt=0, description="the 'other' bucket: calls per hour (like Brevo's)")
    dynamic_lists: bool = Field(False, description="create lists that filter on the segment field")


class FakePlatform:
    """The in-memory CRM as a :class:`~segsync.sync.platform.Platform`.

    Contacts, members and writes use the fast ``"contacts"`` bucket; fields, lists and deals
    use the hourly ``"other"`` bucket, so plans and pauses behave as they do on Brevo.
    """

    name: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake CRM (in memory)"
    Settings: ClassVar[type[PlatformSettings]] = FakeSettings
    secret_env: ClassVar[str] = "SEGSYNC_FAKE_TOKEN"  # noqa: S105 - an env var name
    memberships_inline: ClassVar[bool] = False
    dynamic_lists: bool = False  # set per instance from settings where the CRM can
    incremental_purchases: bool = True

    def __init__(
        self, crm: FakeCRM, *, runner: CallRunner, settings: FakeSettings | None = None, token: str = ""
    ) -> None:
        self.crm = crm
        self.runner = runner
        self.settings = settings or FakeSettings()
        self.limits = PlatformLimits(
            write_batch=self.settings.write_batch, membership_batch=self.settings.membership_batch
        )
        self.dynamic_lists = self.settings.dynamic_lists
        self._token = token or crm.secret
        self.closed = False

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def rate_buckets(cls, settings: PlatformSettings) -> Mapping[str, Sequence[RateWindow]]:
        s = settings if isinstance(settings, FakeSettings) else FakeSettings()
        return {
            "contacts": [RateWindow(requests=s.contacts_per_second, seconds=1.0)],
            "other": [RateWindow(requests=s.other_per_hour, seconds=3600.0)],
        }

    @classmethod
    def create(cls, settings: PlatformSettings, *, secret: SecretStr, runner: CallRunner) -> Platform:
        assert isinstance(settings, FakeSettings)
        return cls(
            FakeCRM.named(settings.crm), runner=runner, settings=settings, token=secret.get_secret_value()
        )

    @classmethod
    def sandbox(cls) -> type[Sandbox] | None:
        return None

    def _call(self, operation: str, fn: Callable[[], T], *, bucket: str, write: bool = False) -> T:
        def send() -> T:
            return self.crm.handle(operation, bucket=bucket, token=self._token, write=write, apply=fn)

        return self.runner.call(operation, send, bucket=bucket, write=write)

    def _missing(self, operation: str, what: str) -> PermanentError:
        return PermanentError(f"{what} does not exist", platform="fake", operation=operation, status=404)

    # -- account --------------------------------------------------------------------------

    def account_id(self) -> str:
        return self._call("account.id", lambda: self.crm.account_id, bucket="contacts")

    def check(self) -> list[str]:
        count = self._call("account.get", lambda: len(self.crm.contacts), bucket="contacts")
        return [f"fake CRM: {count} contacts"]

    # -- pulls ----------------------------------------------------------------------------

    def _remote_name(self, key: str) -> str:
        return key.upper()

    def iter_contacts(
        self, properties: Sequence[str], managed: Sequence[FieldSpec], lists: Mapping[str, str]
    ) -> Iterator[Contact | Rejection]:
        after: tuple[int, str] | None = None
        size = self.settings.page_size
        while True:
            page, types = self._call(
                "contacts.page", partial(self._contacts_page, after, size), bucket="contacts"
            )
            for c, list_ids in page:
                managed_values = {
                    spec.key: _parse(
                        types.get(self._remote_name(spec.key)), c.values.get(self._remote_name(spec.key))
                    )
                    for spec in managed
                }
                yield Contact(
                    id=c.id,
                    email=c.email or None,
                    properties={p: (c.properties.get(p) or None) for p in properties},
                    managed=managed_values,
                    lists=frozenset(k for k, lid in lists.items() if lid in list_ids)
                    if self.memberships_inline
                    else None,
                )
            if len(page) < size:
                return
            after = natural_key(page[-1][0].id)

    def _contacts_page(
        self, after: tuple[int, str] | None, size: int
    ) -> tuple[list[tuple[FakeContact, set[str]]], dict[str, str]]:
        """A page of contacts with the lists each is in, and the field types to parse values by."""
        ids = sorted(
            (cid for cid in self.crm.contacts if after is None or natural_key(cid) > after), key=natural_key
        )
        rows = []
        for cid in ids[:size]:
            c = self.crm.contacts[cid]
            in_lists = {lst.id for lst in self.crm.lists.values() if cid in self.crm.members(lst)}
            rows.append((FakeContact(c.id, c.email, dict(c.properties), dict(c.values)), in_lists))
        return rows, {name: f.type for name, f in self.crm.fields.items()}

    def iter_purchases(self, since: dt.datetime | None) -> Iterator[Purchase | PurchaseRetracted | Rejection]:
        after: tuple[int, str] | None = None
        size = self.settings.page_size
        floor = None if since is None else math.floor((since - _EPOCH).total_seconds())
        while True:
            page = self._call("deals.page", partial(self._deals_page, after, floor, size), bucket="other")
            for deal in page:
                yield from self._purchases(deal, incremental=floor is not None)
            if len(page) < size:
                return
            after = (page[-1].modified, page[-1].id)

    def _deals_page(self, after: tuple[int, str] | None, floor: int | None, size: int) -> list[FakeDeal]:
        deals = sorted(self.crm.deals.values(), key=lambda d: (d.modified, d.id))
        out = [
            FakeDeal(**vars(d))
            for d in deals
            if (after is None or (d.modified, d.id) > after)
            and (floor is None or d.modified > floor)
            and (floor is not None or not d.deleted)
        ]
        return out[:size]

    def _purchases(
        self, deal: FakeDeal, *, incremental: bool
    ) -> Iterator[Purchase | PurchaseRetracted | Rejection]:
        if deal.deleted or deal.stage != "won":
            if incremental:
                yield PurchaseRetracted(id=deal.id)
            return
        if not deal.contact_ids:
            yield Rejection(kind="purchase", record_id=deal.id, reason="deal has no associated contact")
            return
        try:
            amount = Decimal(deal.amount)
        except InvalidOperation:
            reason = "deal has no amount" if not deal.amount else "deal amount is not a number"
            yield Rejection(kind="purchase", record_id=deal.id, reason=reason)
            return
        if not deal.closedate:
            yield Rejection(kind="purchase", record_id=deal.id, reason="deal has no close date")
            return
        closed = dt.datetime.fromisoformat(deal.closedate)
        if closed.tzinfo is None:
            closed = closed.replace(tzinfo=dt.UTC)
        for cid in deal.contact_ids:
            yield Purchase(
                id=deal.id,
                contact_id=cid,
                amount=amount,
                currency=deal.currency or None,
                closed_at=closed,
                modified_at=_EPOCH + dt.timedelta(seconds=deal.modified),
            )

    # -- fields ---------------------------------------------------------------------------

    def inspect_fields(self, specs: Sequence[FieldSpec]) -> Mapping[str, RemoteField | None]:
        def read() -> dict[str, RemoteField | None]:
            out: dict[str, RemoteField | None] = {}
            for spec in specs:
                f = self.crm.fields.get(self._remote_name(spec.key))
                out[spec.key] = (
                    None
                    if f is None
                    else RemoteField(name=f.name, type=f.type, options=tuple(f.options), group=f.group)
                )
            return out

        return self._call("fields.list", read, bucket="other")

    def create_fields(self, specs: Sequence[FieldSpec]) -> None:
        if not specs:
            return
        if not self._call("groups.get", lambda: GROUP in self.crm.groups, bucket="other"):
            self._call("groups.create", self._create_group, bucket="other", write=True)
        for spec in specs:
            self._call("fields.create", partial(self._create_field, spec), bucket="other", write=True)

    def _create_group(self) -> None:
        if GROUP in self.crm.groups:
            raise PermanentError(
                f"group {GROUP} already exists", platform="fake", operation="groups.create", status=409
            )
        self.crm.groups.add(GROUP)

    def _create_field(self, spec: FieldSpec) -> None:
        name = self._remote_name(spec.key)
        if name in self.crm.fields:
            raise PermanentError(
                f"field {name} already exists", platform="fake", operation="fields.create", status=409
            )
        self.crm.fields[name] = FakeField(
            name, REMOTE_TYPES[spec.type], [o.value for o in spec.options], GROUP
        )

    def update_field_options(self, spec: FieldSpec) -> None:
        def update() -> None:
            f = self.crm.fields.get(self._remote_name(spec.key))
            if f is None:
                raise self._missing("fields.update", f"field {self._remote_name(spec.key)}")
            f.options = [o.value for o in spec.options]

        self._call("fields.update", update, bucket="other", write=True)

    def field_matches(self, spec: FieldSpec, remote: RemoteField) -> str | None:
        wanted = REMOTE_TYPES[spec.type]
        if remote.type != wanted:
            return f"{remote.name} is a {remote.type} field in the CRM; segsync needs a {wanted} field"
        return None

    # -- lists ----------------------------------------------------------------------------

    @staticmethod
    def _remote_list(lst: FakeList) -> RemoteList:
        return RemoteList(id=lst.id, name=lst.name, dynamic=lst.dynamic, size=None)

    def get_list(self, list_id: str) -> RemoteList | None:
        def get() -> RemoteList | None:
            lst = self.crm.lists.get(list_id)
            return None if lst is None else self._remote_list(lst)

        return self._call("lists.get", get, bucket="other")

    def find_list(self, name: str) -> RemoteList | None:
        size = self.settings.page_size
        for offset in itertools.count(0, size):
            page = self._call(
                "lists.page",
                partial(self._lists_page, offset, size),
                bucket="other",
            )
            for lst in page:
                if lst.name.casefold() == name.casefold():
                    return lst
            if len(page) < size:
                return None
        raise AssertionError("unreachable")  # pragma: no cover

    def create_list(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        if dynamic and not (spec.filter_field and spec.filter_value):
            raise ConfigError(f"list {spec.key!r} cannot be dynamic: it names no filter_field/filter_value")

        def create() -> RemoteList:
            list_id = str(next(self.crm._ids))
            lst = FakeList(
                list_id,
                spec.name,
                dynamic=dynamic,
                filter_field=self._remote_name(spec.filter_field) if dynamic and spec.filter_field else None,
                filter_value=spec.filter_value if dynamic else None,
            )
            self.crm.lists[list_id] = lst
            return self._remote_list(lst)

        return self._call("lists.create", create, bucket="other", write=True)

    def _lists_page(self, offset: int, size: int) -> list[RemoteList]:
        return [self._remote_list(x) for x in list(self.crm.lists.values())[offset : offset + size]]

    def list_members(self, list_id: str) -> Iterator[str]:
        size = self.settings.page_size
        for offset in itertools.count(0, size):
            page = self._call(
                "lists.members", partial(self._members_page, list_id, offset, size), bucket="contacts"
            )
            yield from page
            if len(page) < size:
                return

    def _members_page(self, list_id: str, offset: int, size: int) -> list[str]:
        lst = self.crm.lists.get(list_id)
        if lst is None:
            raise self._missing("lists.members", f"list {list_id}")
        return sorted(self.crm.members(lst), key=natural_key)[offset : offset + size]

    def add_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self._membership("lists.add", list_id, contact_ids, add=True)

    def remove_members(self, list_id: str, contact_ids: Sequence[str]) -> WriteResult:
        return self._membership("lists.remove", list_id, contact_ids, add=False)

    def _membership(
        self, operation: str, list_id: str, contact_ids: Sequence[str], *, add: bool
    ) -> WriteResult:
        if not contact_ids:
            return WriteResult()
        self._check_batch(operation, len(contact_ids), self.limits.membership_batch)

        def change() -> WriteResult:
            lst = self.crm.lists.get(list_id)
            if lst is None:
                raise self._missing(operation, f"list {list_id}")
            if lst.dynamic:
                raise PermanentError(
                    f"list {list_id} is dynamic; its members follow its filter",
                    platform="fake",
                    operation=operation,
                    status=400,
                )
            ok, failed = [], []
            for cid in contact_ids:
                if cid not in self.crm.contacts:
                    failed.append(RecordFailure(record_id=cid, reason="contact not found"))
                    continue
                (lst.members.add if add else lst.members.discard)(cid)
                ok.append(cid)
            return WriteResult(ok=tuple(ok), failed=tuple(failed))

        return self._call(operation, change, bucket="contacts", write=True)

    # -- values ---------------------------------------------------------------------------

    def write_fields(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        if not updates:
            return WriteResult()
        self._check_batch("contacts.update", len(updates), self.limits.write_batch)
        payload = [
            (u.contact_id, {self._remote_name(k): _to_remote(v) for k, v in u.values.items()})
            for u in updates
        ]
        return self._call(
            "contacts.update", lambda: self._apply_writes(payload), bucket="contacts", write=True
        )

    def _apply_writes(self, payload: Sequence[tuple[str, Mapping[str, str]]]) -> WriteResult:
        for _cid, values in payload:
            for name in values:
                if name not in self.crm.fields:
                    raise PermanentError(
                        f"unknown field {name}", platform="fake", operation="contacts.update", status=400
                    )
        ok, failed = [], []
        for cid, values in payload:
            contact = self.crm.contacts.get(cid)
            if contact is None:
                failed.append(RecordFailure(record_id=cid, reason="contact not found"))
                continue
            bad = [name for name, raw in values.items() if not _valid(self.crm.fields[name], raw)]
            if bad:
                failed.append(
                    RecordFailure(record_id=cid, reason=f"invalid value for {', '.join(sorted(bad))}")
                )
                continue
            for name, raw in values.items():
                if contact.values.get(name, "") != raw:
                    self.crm.value_changes += 1
                if raw:
                    contact.values[name] = raw
                else:
                    contact.values.pop(name, None)
            ok.append(cid)
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _check_batch(self, operation: str, size: int, limit: int) -> None:
        if size > limit:
            raise PermanentError(
                f"{size} records in one call; the limit is {limit}",
                platform="fake",
                operation=operation,
                status=400,
            )

    # -- costs ----------------------------------------------------------------------------

    def call_cost(self, kind: CostKind, records: int) -> Mapping[str, int]:
        page = self.settings.page_size
        if kind in ("pull_contacts", "read_members"):
            return {"contacts": records // page + 1}
        if kind == "pull_purchases":
            return {"other": records // page + 1}
        if kind == "create_field":
            return {"other": records + 1 if records else 0}  # one look at the group first
        if kind in ("update_field", "create_list"):
            return {"other": records}
        batch = self.limits.write_batch if kind == "write_fields" else self.limits.membership_batch
        return {"contacts": math.ceil(records / batch)}

    def close(self) -> None:
        self.closed = True


def _parse(remote_type: str | None, raw: str | None) -> FieldValue:
    """The CRM's string back into the core type its field holds (None when empty or unknown)."""
    if not raw or remote_type is None:
        return None
    try:
        if remote_type == "float":
            return Decimal(raw)
        if remote_type == "date":
            return dt.date.fromisoformat(raw)
    except (InvalidOperation, ValueError):
        return None
    return raw


def _to_remote(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class FakeInlinePlatform(FakePlatform):
    """The fake CRM answering like Brevo: contacts carry their list memberships inline."""

    name: ClassVar[str] = "fake_inline"
    display_name: ClassVar[str] = "Fake CRM (in memory, memberships inline)"
    memberships_inline: ClassVar[bool] = True


@hookimpl
def register_platforms(register: PlatformRegister) -> None:
    """Register the fake platforms; tests do ``pm.register(segsync.testing.fake)``."""
    register(FakePlatform)
    register(FakeInlinePlatform)
