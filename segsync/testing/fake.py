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
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    AuthError,
    ConfigError,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
)
from segsync.plugins.hookspecs import hookimpl
from segsync.plugins.registry import PlatformRegister
from segsync.sandbox import FaultPlan, SeedData
from segsync.sandbox.server import RateWindows, _FaultState
from segsync.sync.platform import CostKind, Platform, PlatformLimits, PlatformSettings
from segsync.sync.runner import CallRunner, Clock, RateWindow

if TYPE_CHECKING:
    from segsync.sandbox import Sandbox

T = TypeVar("T")

GROUP = "segsync"
#: How the fake CRM names the four field types segsync uses.
REMOTE_TYPES: Mapping[str, str] = {
    "string": "text",
    "number": "float",
    "date": "date",
    "enumeration": "category",
}
#: Modification times of deals count up from here, one second per change: deterministic and
#: independent of any clock, like a CRM's own server time.
_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_CONTACT_PROPERTIES = ("email", "firstname", "lastname", "country", "city", "age", "jobtitle", "company_size")


@dataclass
class FakeField:
    name: str
    type: str
    options: list[str] = field(default_factory=list)
    group: str | None = None


@dataclass
class FakeList:
    id: str
    name: str
    dynamic: bool = False
    filter_field: str | None = None
    filter_value: str | None = None
    members: set[str] = field(default_factory=set)
    by_segsync: bool = True


@dataclass
class FakeContact:
    id: str
    email: str
    properties: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeDeal:
    id: str
    contact_ids: tuple[str, ...]
    amount: str
    currency: str
    closedate: str
    stage: str
    modified: int
    deleted: bool = False


@dataclass
class _Action:
    prefix: str
    action: Callable[[FakeCRM], None]
    times: int


class FakeCRM:
    """The CRM side: contacts, deals, fields, lists, and what answers requests.

    Tests arrange and inspect state directly (``seed``, ``delete_contact``, ``snapshot``...);
    the platform reaches it only through :meth:`handle`, one request at a time.
    """

    _named: ClassVar[weakref.WeakValueDictionary[str, FakeCRM]] = weakref.WeakValueDictionary()

    def __init__(
        self,
        *,
        secret: str = "fake-token",  # noqa: S107 - the fake CRM's test credential, not a secret
        clock: Clock | None = None,
        buckets: Mapping[str, Sequence[RateWindow]] | None = None,
        faults: FaultPlan | None = None,
        scopes: Sequence[str] = ("crm.read", "crm.write"),
        account_id: str | None = None,
    ) -> None:
        from segsync.sandbox import derived_account_id
        from segsync.sync.runner import SystemClock

        self.secret = secret
        self.account_id = account_id or derived_account_id(secret)
        self.scopes = set(scopes)
        self.contacts: dict[str, FakeContact] = {}
        self.deals: dict[str, FakeDeal] = {}
        self.fields: dict[str, FakeField] = {}
        self.groups: set[str] = set()
        self.lists: dict[str, FakeList] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []  # (operation, outcome)
        #: Field values that changed because of a write (a repeated write of the same value
        #: does not count): the reliability harness checks nothing is written twice.
        self.value_changes = 0
        self._faults = _FaultState(faults or FaultPlan())
        self._rates = RateWindows(clock or SystemClock())
        for bucket, windows in (buckets or {}).items():
            self._rates.configure(bucket, [(w.requests, w.seconds) for w in windows])
        self._actions: list[_Action] = []
        self._ids = itertools.count(101)
        self._seq = itertools.count(1)

    # -- registry for FakePlatform.create (connect() builds platforms from settings) ---------

    def register(self, name: str) -> FakeCRM:
        """Make this CRM reachable as ``[platforms.fake] crm = "<name>"``."""
        FakeCRM._named[name] = self
        return self

    @classmethod
    def named(cls, name: str) -> FakeCRM:
        try:
            return cls._named[name]
        except KeyError:
            raise ConfigError(
                f"[platforms.fake] crm = {name!r}: no fake CRM registered under that name; "
                "call FakeCRM(...).register(name) in the test first"
            ) from None

    # -- arranging state ------------------------------------------------------------------

    def set_faults(self, plan: FaultPlan | None) -> None:
        with self.lock:
            self._faults = _FaultState(plan or FaultPlan())

    @property
    def faults_injected(self) -> dict[str, int]:
        return dict(self._faults.injected)

    def before(self, prefix: str, action: Callable[[FakeCRM], None], *, times: int = 1) -> None:
        """Run ``action(crm)`` before the next ``times`` requests whose operation starts with ``prefix``."""
        with self.lock:
            self._actions.append(_Action(prefix, action, times))

    def seed(self, data: SeedData) -> None:
        with self.lock:
            for c in data.contacts:
                props = {p: getattr(c, p) for p in _CONTACT_PROPERTIES}
                props["createdate"] = c.createdate
                self.contacts[c.id] = FakeContact(c.id, c.email, props)
            for p in data.purchases:
                contact_ids = (p.contact_id,) if p.contact_id else ()
                self.deals[p.deal_id] = FakeDeal(
                    p.deal_id, contact_ids, p.amount, p.currency, p.closedate, p.stage, next(self._seq)
                )

    def add_contact(self, contact_id: str, email: str = "", **properties: str) -> None:
        with self.lock:
            self.contacts[contact_id] = FakeContact(contact_id, email, dict(properties))

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        with self.lock:
            deal_id = f"D{next(self._ids)}"
            self.deals[deal_id] = FakeDeal(
                deal_id, (contact_id,), str(amount), "USD", closed_at.isoformat(), "won", next(self._seq)
            )
            return deal_id

    def set_deal_stage(self, deal_id: str, stage: str) -> None:
        with self.lock:
            self.deals[deal_id].stage = stage
            self.deals[deal_id].modified = next(self._seq)

    def delete_deal(self, deal_id: str) -> None:
        with self.lock:
            self.deals[deal_id].deleted = True
            self.deals[deal_id].modified = next(self._seq)

    def delete_contact(self, contact_id: str) -> None:
        with self.lock:
            self.contacts.pop(contact_id, None)
            for lst in self.lists.values():
                lst.members.discard(contact_id)

    def delete_list(self, list_id: str) -> None:
        with self.lock:
            self.lists.pop(list_id, None)

    def delete_field(self, name: str) -> None:
        with self.lock:
            self.fields.pop(name, None)
            for c in self.contacts.values():
                c.values.pop(name, None)

    def change_field_type(self, name: str, new_type: str) -> None:
        """What a CRM user does in the UI: the field keeps its name, gets another type."""
        with self.lock:
            self.fields[name].type = new_type
            self.fields[name].options = []

    def add_user_list(self, name: str) -> str:
        """A list a CRM user made (not segsync's): same name rules, ignored by snapshots."""
        with self.lock:
            list_id = str(next(self._ids))
            self.lists[list_id] = FakeList(list_id, name, by_segsync=False)
            return list_id

    # -- inspecting state -----------------------------------------------------------------

    def members(self, lst: FakeList) -> set[str]:
        if not lst.dynamic:
            return set(lst.members)
        return {
            c.id
            for c in self.contacts.values()
            if lst.filter_field and c.values.get(lst.filter_field) == lst.filter_value
        }

    def snapshot(self) -> dict[str, object]:
        """The segsync-visible end state, in the :meth:`segsync.sandbox.Sandbox.snapshot` shape."""
        with self.lock:
            managed = {name for name, f in self.fields.items() if f.group == GROUP}
            values: dict[str, dict[str, str]] = {}
            for cid in sorted(self.contacts, key=natural_key):
                row = {
                    name.lower(): v
                    for name, v in sorted(self.contacts[cid].values.items())
                    if name in managed and v
                }
                if row:
                    values[cid] = row
            ours = [lst for lst in self.lists.values() if lst.by_segsync]
            return {
                "fields": values,
                "lists": {lst.name: sorted(self.members(lst), key=natural_key) for lst in ours},
                "field_defs": sorted(name.lower() for name in managed),
                "list_names": sorted(lst.name for lst in ours),
            }

    def count(self, operation: str, outcome: str = "ok") -> int:
        """How many requests to ``operation`` ended with ``outcome`` (``ok``, a fault kind, ...)."""
        with self.lock:
            return sum(1 for op, out in self.requests if op == operation and out == outcome)

    # -- answering requests ---------------------------------------------------------------

    def handle(self, operation: str, *, bucket: str, token: str, write: bool, apply: Callable[[], T]) -> T:
        """One request: scheduled actions, auth, faults, rate windows, then ``apply``."""
        with self.lock:
            for act in list(self._actions):
                if operation.startswith(act.prefix):
                    act.times -= 1
                    if act.times <= 0:
                        self._actions.remove(act)
                    act.action(self)
            if token != self.secret:
                self.requests.append((operation, "401"))
                raise AuthError(
                    "the token was rejected; set SEGSYNC_FAKE_TOKEN",
                    platform="fake",
                    operation=operation,
                    status=401,
                )
            needed = "crm.write" if write else "crm.read"
            if needed not in self.scopes:
                self.requests.append((operation, "403"))
                raise PermissionDenied(
                    "the token may not do this",
                    required_scopes=(needed,),
                    platform="fake",
                    operation=operation,
                )
            fault = self._faults.pick("POST" if write else "GET", operation)
            if fault is not None and fault != "lost_response":
                self.requests.append((operation, fault))
                raise _fault_error(fault, operation, self._faults.plan.retry_after)
            allowed, _limit, _remaining, reset = self._rates.take(bucket)
            if not allowed:
                self.requests.append((operation, "429"))
                raise RateLimited(
                    f"{bucket} rate limit reached",
                    retry_after=reset,
                    platform="fake",
                    operation=operation,
                    status=429,
                )
            try:
                result = apply()
            except PlatformError as exc:
                self.requests.append((operation, str(exc.status or type(exc).__name__)))
                raise
            self.requests.append((operation, fault or "ok"))
            if fault == "lost_response":
                raise TransientError(
                    "the connection dropped before the answer", platform="fake", operation=operation
                )
            return result


def _fault_error(kind: str, operation: str, retry_after: float | None) -> PlatformError:
    if kind == "429":
        return RateLimited(
            "rate limit reached", retry_after=retry_after, platform="fake", operation=operation, status=429
        )
    if kind in ("500", "502", "503"):
        return TransientError("server error", platform="fake", operation=operation, status=int(kind))
    return TransientError(f"request failed ({kind})", platform="fake", operation=operation)


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
    incremental_purchases: ClassVar[bool] = True

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


def _valid(f: FakeField, raw: str) -> bool:
    if not raw:
        return True
    try:
        if f.type == "float":
            Decimal(raw)
        elif f.type == "date":
            dt.date.fromisoformat(raw)
        elif f.type == "category":
            return raw in f.options
    except (InvalidOperation, ValueError):
        return False
    return True


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
