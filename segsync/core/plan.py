"""Planning: what must change in the CRM, as data. Pure: no IO, no clock.

:func:`make_plan` compares the desired state (computed by :mod:`segsync.core.desired`) with what
is *really* in the CRM now (:class:`Observed`, read by the engine just before planning) and
returns a :class:`SyncPlan` of idempotent ops. Because the plan is made against the CRM and
not against a memory of past runs, a re-run after a crash writes only what is still missing,
and a deleted state store costs a full comparison, never wrong data.

Ops, in the order the engine applies them::

    CreateFields(specs)              fields missing in the CRM
    UpdateFieldOptions(spec)         an enumeration lacks some segment options
    FieldConflict(spec, remote, why) a field exists with another type: reported, never written
    CreateList(spec, dynamic)        a list is missing (or was deleted behind segsync's back)
    WriteFields(updates)             only contacts whose values differ, only the differing fields
    RemoveMembers / AddMembers       per list, only the differences (none for dynamic lists)

The summary counts changes per field and per list, and prices the plan in API calls per rate
bucket with the platform's ``call_cost``; with the bucket's rate windows it gives the least
time the sync can take (Brevo's 100 calls per hour bucket makes a first sync take hours).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypeVar

from segsync.core.cost import CostKind, RateWindow
from segsync.core.models import (
    ContactUpdate,
    FieldSpec,
    FieldType,
    FieldValue,
    ListSpec,
    Rejection,
    RemoteField,
    RemoteList,
)
from segsync.core.text import human_duration

CostFn = Callable[[CostKind, int], Mapping[str, int]]
OpT = TypeVar("OpT")

#: ``held`` targets: a record parked after too many failed runs is left out of its target.
FIELDS_TARGET = "fields"


def list_target(list_key: str) -> str:
    return f"list:{list_key}"


class Change(Protocol):
    """A contact's segment in an exclusive set differs from what the CRM holds."""

    @property
    def contact_id(self) -> str: ...

    @property
    def set_key(self) -> str: ...

    @property
    def old(self) -> str | None: ...

    @property
    def new(self) -> str | None: ...


class DesiredState(Protocol):
    """What the CRM should hold; :class:`segsync.core.desired.Desired` is one; tests pass
    smaller ones."""

    @property
    def fields(self) -> Sequence[FieldSpec]: ...

    @property
    def lists(self) -> Sequence[ListSpec]: ...

    @property
    def values(self) -> Mapping[str, Mapping[str, FieldValue]]:
        """Every managed field for every accepted contact (None = empty)."""

    @property
    def members(self) -> Mapping[str, Set[str]]:
        """Contact ids per list key."""

    @property
    def changes(self) -> Sequence[Change]: ...

    @property
    def rejections(self) -> Sequence[Rejection]: ...


@dataclass(frozen=True)
class Observed:
    """What is in the CRM now, as the engine read it just before planning.

    ``values`` holds the managed values of every live contact pulled (a contact absent here
    does not exist and is never written). ``fields`` is ``inspect_fields`` by spec key and
    ``conflicts`` the non-None ``field_matches`` reasons. ``lists`` is the resolved remote list
    per list key (None: missing, to create) and ``members`` the current members of each list
    that exists.
    """

    values: Mapping[str, Mapping[str, FieldValue]]
    fields: Mapping[str, RemoteField | None] = field(default_factory=dict)
    conflicts: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, RemoteList | None] = field(default_factory=dict)
    members: Mapping[str, Set[str]] = field(default_factory=dict)
    emails: Mapping[str, str | None] = field(default_factory=dict)


# -- ops ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateFields:
    specs: tuple[FieldSpec, ...]

    def __str__(self) -> str:
        return f"create {len(self.specs)} field(s): {', '.join(s.key for s in self.specs)}"


@dataclass(frozen=True)
class UpdateFieldOptions:
    spec: FieldSpec
    added: tuple[str, ...]

    def __str__(self) -> str:
        return f"add option(s) {', '.join(self.added)} to field {self.spec.key}"


@dataclass(frozen=True)
class FieldConflict:
    spec: FieldSpec
    remote: RemoteField
    reason: str

    def __str__(self) -> str:
        return (
            f"CONFLICT field {self.spec.key}: {self.reason}; segsync will not write it "
            "(restore its type in the CRM, or delete it so segsync recreates it)"
        )


@dataclass(frozen=True)
class CreateList:
    spec: ListSpec
    dynamic: bool

    def __str__(self) -> str:
        return f"create {'dynamic' if self.dynamic else 'manual'} list {self.spec.name!r}"


@dataclass(frozen=True)
class WriteFields:
    updates: tuple[ContactUpdate, ...]

    def __str__(self) -> str:
        return f"write fields of {len(self.updates)} contact(s)"


@dataclass(frozen=True)
class AddMembers:
    list_key: str
    ids: tuple[str, ...]

    def __str__(self) -> str:
        return f"add {len(self.ids)} contact(s) to list {self.list_key}"


@dataclass(frozen=True)
class RemoveMembers:
    list_key: str
    ids: tuple[str, ...]

    def __str__(self) -> str:
        return f"remove {len(self.ids)} contact(s) from list {self.list_key}"


Op = CreateFields | UpdateFieldOptions | FieldConflict | CreateList | WriteFields | AddMembers | RemoveMembers


@dataclass(frozen=True)
class PlanSummary:
    fields_to_create: int = 0
    options_to_update: int = 0
    conflicts: tuple[str, ...] = ()
    lists_to_create: int = 0
    contacts_to_write: int = 0
    #: contacts whose value changes, per field key
    field_changes: Mapping[str, int] = field(default_factory=dict)
    list_adds: Mapping[str, int] = field(default_factory=dict)
    list_removes: Mapping[str, int] = field(default_factory=dict)
    #: records left out because they failed too many runs (``--retry-failed`` brings them back)
    held_back: int = 0
    #: API calls the apply phase costs, per rate bucket
    calls: Mapping[str, int] = field(default_factory=dict)
    #: least seconds the calls need under the rate windows, and the bucket that decides it
    min_seconds: float = 0.0
    bottleneck: str | None = None


@dataclass(frozen=True)
class SyncPlan:
    ops: tuple[Op, ...]
    summary: PlanSummary

    @property
    def writes_anything(self) -> bool:
        return any(not isinstance(op, FieldConflict) for op in self.ops)

    def of_type(self, kind: type[OpT]) -> list[OpT]:
        return [op for op in self.ops if isinstance(op, kind)]

    def describe(self) -> list[str]:
        """One line per op group plus the cost line, for ``segsync plan``."""
        s = self.summary
        lines = [
            str(op) for op in self.ops if isinstance(op, CreateFields | UpdateFieldOptions | FieldConflict)
        ]
        lines += [str(op) for op in self.of_type(CreateList)]
        if s.contacts_to_write:
            per_field = ", ".join(f"{k} {n}" for k, n in sorted(s.field_changes.items()))
            lines.append(f"write {s.contacts_to_write} contact(s): {per_field}")
        for key in sorted(set(s.list_adds) | set(s.list_removes)):
            lines.append(f"list {key}: +{s.list_adds.get(key, 0)} -{s.list_removes.get(key, 0)}")
        if s.held_back:
            lines.append(f"{s.held_back} record(s) held back after repeated failures (see `segsync jobs`)")
        if not self.writes_anything:
            lines.append("nothing to write: the CRM is up to date")
        if s.calls:
            calls = ", ".join(f"{b} {n}" for b, n in sorted(s.calls.items()))
            line = f"API calls: {calls}"
            if s.min_seconds > 0:
                wait = human_duration(s.min_seconds)
                line += f"; takes at least {wait} (rate limit of the {s.bottleneck!r} bucket)"
            lines.append(line)
        return lines


# -- planning -------------------------------------------------------------------------------


def make_plan(
    desired: DesiredState,
    observed: Observed,
    *,
    dynamic_lists: bool = False,
    memberships_managed_by_platform: bool = False,
    held: Set[tuple[str, str]] = frozenset(),
    cost: CostFn | None = None,
    windows: Mapping[str, Sequence[RateWindow]] | Callable[[str], Sequence[RateWindow]] | None = None,
    used: Mapping[str, int] | None = None,
) -> SyncPlan:
    """The ops that take the CRM from ``observed`` to ``desired``.

    ``dynamic_lists``: create missing lists as dynamic (platform-kept members) when their spec
    names a filter. ``memberships_managed_by_platform``: the platform keeps every list's
    members itself, so no membership ops at all. ``held``: ``(target, record id)`` pairs to
    leave out (:data:`FIELDS_TARGET` or :func:`list_target`). ``cost``/``windows``/``used``
    price the plan: ``used`` is calls this job already spent per bucket (the pull).
    """
    ops: list[Op] = []
    missing, writable, conflicts, updates_options = _plan_fields(desired, observed, ops)
    platform_kept = memberships_managed_by_platform
    creates, managed_lists = _plan_lists(desired, observed, ops, dynamic_lists, platform_kept)
    updates, field_changes, held_back = _plan_values(desired, observed, writable, held, ops)
    adds, removes, held_members = _plan_members(desired, observed, managed_lists, held, ops)
    calls = price(ops, cost) if cost is not None else {}
    seconds, bottleneck = min_duration(calls, windows or {}, used or {})
    summary = PlanSummary(
        fields_to_create=len(missing),
        options_to_update=updates_options,
        conflicts=tuple(conflicts),
        lists_to_create=len(creates),
        contacts_to_write=len(updates),
        field_changes=dict(field_changes),
        list_adds=adds,
        list_removes=removes,
        held_back=held_back + held_members,
        calls=calls,
        min_seconds=seconds,
        bottleneck=bottleneck,
    )
    return SyncPlan(tuple(ops), summary)


def _plan_fields(
    desired: DesiredState, observed: Observed, ops: list[Op]
) -> tuple[tuple[FieldSpec, ...], set[str], list[str], int]:
    """Fields to create, conflicts to report, enumerations to extend; the keys safe to write."""
    missing = tuple(s for s in desired.fields if observed.fields.get(s.key) is None)
    if missing:
        ops.append(CreateFields(missing))
    writable = {s.key for s in desired.fields}
    conflicts: list[str] = []
    updates_options = 0
    for spec in desired.fields:
        remote = observed.fields.get(spec.key)
        if remote is None:
            continue
        reason = observed.conflicts.get(spec.key)
        if reason:
            ops.append(FieldConflict(spec, remote, reason))
            conflicts.append(f"{spec.key}: {reason}")
            writable.discard(spec.key)
            continue
        if spec.type == "enumeration":
            added = tuple(o.value for o in spec.options if o.value not in set(remote.options))
            if added:
                ops.append(UpdateFieldOptions(spec, added))
                updates_options += 1
    return missing, writable, conflicts, updates_options


def _plan_lists(
    desired: DesiredState,
    observed: Observed,
    ops: list[Op],
    dynamic_lists: bool,
    memberships_managed_by_platform: bool,
) -> tuple[list[CreateList], list[ListSpec]]:
    """Lists to create, and the lists whose members segsync keeps (not the platform)."""
    creates: list[CreateList] = []
    managed_lists: list[ListSpec] = []
    for lspec in desired.lists:
        remote_list = observed.lists.get(lspec.key)
        if remote_list is None:
            dynamic = dynamic_lists and bool(lspec.filter_field and lspec.filter_value)
            creates.append(CreateList(lspec, dynamic))
            platform_kept = dynamic
        else:
            platform_kept = remote_list.dynamic
        if not (platform_kept or memberships_managed_by_platform):
            managed_lists.append(lspec)
    ops.extend(creates)
    return creates, managed_lists


def _plan_values(
    desired: DesiredState, observed: Observed, writable: set[str], held: Set[tuple[str, str]], ops: list[Op]
) -> tuple[list[ContactUpdate], Counter[str], int]:
    """Per contact, only the values that differ from what the CRM holds."""
    specs = {s.key: s for s in desired.fields}
    held_back = 0
    field_changes: Counter[str] = Counter()
    updates: list[ContactUpdate] = []
    for cid in sorted(desired.values, key=natural_key):
        now = observed.values.get(cid)
        if now is None:
            continue  # not in the CRM any more: never written
        diff: dict[str, FieldValue] = {}
        for key, value in desired.values[cid].items():
            fspec = specs.get(key)
            if fspec is None:
                raise ValueError(f"desired value for {key!r}, which is not a managed field")
            held_now = now.get(key)
            if _plainly_same(fspec.type, value, held_now):
                continue  # most values of most syncs: no parsing needed to know
            if key in writable and not same_value(fspec.type, value, held_now):
                diff[key] = value
        if not diff:
            continue
        if (FIELDS_TARGET, cid) in held:
            held_back += 1
            continue
        field_changes.update(diff.keys())
        updates.append(ContactUpdate(contact_id=cid, email=observed.emails.get(cid), values=diff))
    if updates:
        ops.append(WriteFields(tuple(updates)))
    return updates, field_changes, held_back


def _plan_members(
    desired: DesiredState,
    observed: Observed,
    managed_lists: Sequence[ListSpec],
    held: Set[tuple[str, str]],
    ops: list[Op],
) -> tuple[dict[str, int], dict[str, int], int]:
    """Members to remove and add per list segsync keeps; parked records are held back."""
    adds: dict[str, int] = {}
    removes: dict[str, int] = {}
    held_back = 0
    for lspec in managed_lists:
        target = list_target(lspec.key)
        want = {cid for cid in desired.members.get(lspec.key, ()) if cid in observed.values}
        have = {cid for cid in observed.members.get(lspec.key, ()) if cid in observed.values}
        to_remove = sorted(have - want, key=natural_key)
        to_add = sorted(want - have, key=natural_key)
        kept_add = tuple(c for c in to_add if (target, c) not in held)
        kept_remove = tuple(c for c in to_remove if (target, c) not in held)
        held_back += len(to_add) - len(kept_add) + len(to_remove) - len(kept_remove)
        if kept_remove:
            ops.append(RemoveMembers(lspec.key, kept_remove))
            removes[lspec.key] = len(kept_remove)
        if kept_add:
            ops.append(AddMembers(lspec.key, kept_add))
            adds[lspec.key] = len(kept_add)
    return adds, removes, held_back


def price(ops: Sequence[Op], cost: CostFn) -> dict[str, int]:
    """API calls per bucket that applying ``ops`` costs."""
    total: Counter[str] = Counter()

    def add(kind: CostKind, n: int) -> None:
        if n:
            total.update(cost(kind, n))

    for op in ops:
        if isinstance(op, CreateFields):
            add("create_field", len(op.specs))
        elif isinstance(op, UpdateFieldOptions):
            add("update_field", 1)
        elif isinstance(op, CreateList):
            add("create_list", 1)
        elif isinstance(op, WriteFields):
            add("write_fields", len(op.updates))
        elif isinstance(op, AddMembers):
            add("add_members", len(op.ids))
        elif isinstance(op, RemoveMembers):
            add("remove_members", len(op.ids))
    return {b: n for b, n in sorted(total.items()) if n}


def min_duration(
    calls: Mapping[str, int],
    windows: Mapping[str, Sequence[RateWindow]] | Callable[[str], Sequence[RateWindow]],
    used: Mapping[str, int],
) -> tuple[float, str | None]:
    """Least seconds ``calls`` need under each bucket's windows, ``used`` calls already spent.

    A window of ``r`` calls per ``s`` seconds lets calls ``1..r`` go now, the next ``r`` after
    ``s`` seconds, and so on; buckets run in parallel, so the slowest one decides.
    """
    best, bottleneck = 0.0, None
    for bucket, n in calls.items():
        if n <= 0:
            continue
        total = used.get(bucket, 0) + n
        for w in windows(bucket) if callable(windows) else windows.get(bucket, ()):
            seconds = ((total - 1) // w.requests) * w.seconds
            if seconds > best:
                best, bottleneck = seconds, bucket
    return best, bottleneck


# -- comparing values -----------------------------------------------------------------------


def normalize(field_type: FieldType, value: object) -> object:
    """A value in the canonical form of its field type: equal values compare equal.

    ``Decimal("12.5")`` and ``Decimal("12.50")`` and ``"12.5"`` are one number; a datetime is
    its date; empty strings are None. A value that does not parse stays as it is (and so
    differs from any well-formed value: it gets rewritten).
    """
    if value is None or value == "":
        return None
    try:
        if field_type == "number":
            if isinstance(value, bool):
                return value
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            return number if number.is_finite() else value
        if field_type == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value)[:10])
    except (InvalidOperation, ValueError):
        return value
    return str(value) if isinstance(value, int | str | Decimal) else value


def _plainly_same(field_type: FieldType, desired: FieldValue, observed: object) -> bool:
    """Equal without normalising: same type and ``==``, where that implies ``same_value``:
    numbers and dates, and text (a text field's numbers are compared as their texts, and
    ``Decimal("5.0") == Decimal("5")`` while their texts differ)."""
    return (
        desired is not None
        and type(desired) is type(observed)
        and desired == observed
        and (field_type in ("number", "date") or isinstance(desired, str))
    )


def same_value(field_type: FieldType, desired: FieldValue, observed: object) -> bool:
    return normalize(field_type, desired) == normalize(field_type, observed)


def natural_key(record_id: str) -> tuple[int, str]:
    """Sort numeric ids as numbers (``"99"`` before ``"100"``), the way CRMs page them."""
    return (len(record_id), record_id)
