"""The CRM side of the fake: contacts, deals, fields, lists, and what answers requests.

:class:`~segsync.testing.fake.FakePlatform` reaches it one request at a time through
:meth:`FakeCRM.handle`; tests arrange and inspect its state directly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import ClassVar, TypeVar

from segsync.core.cost import RateWindow
from segsync.core.plan import natural_key
from segsync.errors import (
    AuthError,
    ConfigError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
)
from segsync.sandbox import FaultPlan, SeedData
from segsync.sandbox.server import RateWindows, _FaultState
from segsync.sync.runner import Clock

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


__all__ = ["GROUP", "REMOTE_TYPES", "FakeCRM", "FakeContact", "FakeDeal", "FakeField", "FakeList"]
