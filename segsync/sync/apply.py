"""The apply phase of a sync job: the plan's ops sent through the platform, batch by batch.

Every batch is checkpointed; creates are ensure-steps (look, then create what is missing) run
at most once per attempt; a batch the CRM refuses is split until the refused records stand
alone, and those become per-record failures, retried on later runs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from segsync.core.models import ContactUpdate, FieldSpec, ListSpec, RecordFailure, RemoteList, WriteResult
from segsync.core.plan import (
    FIELDS_TARGET,
    AddMembers,
    CreateFields,
    CreateList,
    DesiredState,
    RemoveMembers,
    SyncPlan,
    UpdateFieldOptions,
    WriteFields,
    list_target,
    natural_key,
)
from segsync.core.report import JobInfo, SegmentChange, SyncReport
from segsync.errors import PermanentError
from segsync.sync.hooks import Hooks
from segsync.sync.platform import MembershipChanges, Platform
from segsync.sync.runner import CallRunner
from segsync.sync.state import AccountStore

log = logging.getLogger("segsync.engine")  # a stable name for log filters
T = TypeVar("T")


class ApplyPhase:
    """The apply half of a job (:class:`segsync.sync.engine` builds the job on it)."""

    if TYPE_CHECKING:  # what the job provides
        platform: Platform
        runner: CallRunner
        state: AccountStore
        report: SyncReport
        info: JobInfo
        hooks: Hooks | None
        name: str
        lists: dict[str, RemoteList | None]
        rebuilt: set[str]
        dynamic_lists: bool
        retry_failed: bool
        max_failed_runs: int
        concurrency: int

        def _checkpoint(self, step: str) -> None: ...

        def _list_created(self, key: str, remote: RemoteList) -> None: ...

        def _members_changed(self, key: str, list_id: str, ids: Iterable[str], *, added: bool) -> None: ...

        def _tick(self, phase: str, done: int, total: int | None = None, detail: str = "") -> None: ...

        def _notify(self, hook: str, call: Callable[[Hooks], None]) -> None: ...

    def _apply(self, plan: SyncPlan, desired: DesiredState) -> None:
        changes: dict[str, list[SegmentChange]] = {}
        for ch in desired.changes:
            changes.setdefault(ch.contact_id, []).append(
                SegmentChange(
                    platform=self.name,
                    contact_id=ch.contact_id,
                    segment_set=ch.set_key,
                    old=ch.old,
                    new=ch.new,
                )
            )
        ops = list(plan.ops)
        paired: set[int] = set()  # adds sent with their list's removes
        for i, op in enumerate(ops):
            if isinstance(op, CreateFields):
                self.report.fields_created += self._ensure_fields(op.specs)
                self._checkpoint(f"created {len(op.specs)} field(s)")
            elif isinstance(op, UpdateFieldOptions):
                self.platform.update_field_options(op.spec)
                self._checkpoint(f"updated options of {op.spec.key}")
            elif isinstance(op, CreateList):
                self._ensure_list(op.spec, op.dynamic)
                self._checkpoint(f"created list {op.spec.key}")
            elif isinstance(op, WriteFields):
                self._write_fields(op.updates, desired.fields, changes)
            elif isinstance(op, RemoveMembers):
                # the plan puts a list's adds right after its removes: one call can carry both
                nxt = ops[i + 1] if i + 1 < len(ops) else None
                adds: Sequence[str] = ()
                if isinstance(nxt, AddMembers) and nxt.list_key == op.list_key:
                    adds = nxt.ids
                    paired.add(i + 1)
                self._membership(op.list_key, adds, op.ids, desired)
            elif isinstance(op, AddMembers) and i not in paired:
                self._membership(op.list_key, op.ids, (), desired)

    def _ensure_fields(self, specs: Sequence[FieldSpec]) -> int:
        """Create missing fields; after an ambiguous failure, look before creating again.

        Returns how many were created: all of ``specs`` (they were missing when observed, so
        any that exist now were made by this job, by a call whose answer was lost).
        """
        attempt = 0

        def once() -> None:
            nonlocal attempt
            attempt += 1
            todo = list(specs)
            if attempt > 1:
                remote = self.platform.inspect_fields(specs)
                todo = [s for s in specs if remote.get(s.key) is None]
            if todo:
                with self.runner.at_most_once():
                    self.platform.create_fields(todo)

        self.runner.retrying("ensure fields", once)
        return len(specs)

    def _ensure_list(self, spec: ListSpec, dynamic: bool) -> RemoteList:
        """Create a list; after an ambiguous failure, find it by name before creating again."""
        attempt = 0

        def once() -> tuple[RemoteList, bool]:
            nonlocal attempt
            attempt += 1
            if attempt > 1:
                found = self.platform.find_list(spec.name)
                if found is not None:
                    return found, False
            with self.runner.at_most_once():
                return self.platform.create_list(spec, dynamic=dynamic), True

        remote, created = self.runner.retrying(f"ensure list {spec.key}", once)
        self.report.lists_created += int(created)
        if created:
            self._list_created(spec.key, remote)
        self.lists[spec.key] = remote
        self.state.set_remote_id("list", spec.key, remote.id, remote.name)
        return remote

    def _write_fields(
        self,
        updates: Sequence[ContactUpdate],
        specs: Sequence[FieldSpec],
        changes: Mapping[str, list[SegmentChange]],
    ) -> None:
        batches = list(chunks(updates, self.platform.limits.write_batch))
        total = len(batches)
        for n, batch, outcome in self._send_all(batches, self.platform.write_fields):
            result = (
                self._write_refused(batch, specs, outcome) if isinstance(outcome, PermanentError) else outcome
            )
            ok = set(result.ok)
            self.state.record_written(self.info.job_id, [u for u in batch if u.contact_id in ok])
            self._settle(FIELDS_TARGET, "write", ok, result.failed)
            self.report.contacts_written += len(ok)
            for u in batch:
                if u.contact_id in ok:
                    for change in changes.get(u.contact_id, ()):
                        self._notify("segment_changed", partial(_segment_changed, change=change))
            self._checkpoint(f"write_fields batch {n}/{total}")
            self._tick("apply", n, total, "fields")

    def _write_refused(
        self, batch: Sequence[ContactUpdate], specs: Sequence[FieldSpec], exc: PermanentError
    ) -> WriteResult:
        """The CRM refused a whole write: a field deleted since it was observed is recreated and
        the batch sent again; otherwise the batch is split to find the records it refuses."""
        keys = {k for u in batch for k in u.values}
        wanted = [s for s in specs if s.key in keys]
        remote = self.platform.inspect_fields(wanted)
        missing = [s for s in wanted if remote.get(s.key) is None]
        if missing:
            log.warning(
                "%s: field(s) %s vanished mid-sync; recreating", self.name, ", ".join(s.key for s in missing)
            )
            self.report.fields_created += self._ensure_fields(missing)
            return self._guarded(batch, self.platform.write_fields)
        result = self._bisect(batch, self.platform.write_fields, exc)
        self._stop_if_systematic(batch, result, exc, FIELDS_TARGET, "write")
        return result

    def _membership(self, key: str, add: Sequence[str], remove: Sequence[str], desired: DesiredState) -> None:
        """Change a list's members in batches: removes, then adds; a batch carries both where the
        platform changes both in one call (:class:`MembershipChanges`)."""
        if key in self.rebuilt:
            return  # recreated mid-run and refilled from the desired state already
        size = self.platform.limits.membership_batch
        gone, new = [_Change(c, False) for c in remove], [_Change(c, True) for c in add]
        if isinstance(self.platform, MembershipChanges):
            batches = list(chunks([*gone, *new], size))
        else:
            batches = [*chunks(gone, size), *chunks(new, size)]
        if not batches:
            return
        remote = self.lists[key]
        assert remote is not None, f"list {key} was neither found nor created"
        send = partial(self._members_once, remote.id)
        for n, batch, outcome in self._send_all(batches, send):
            if isinstance(outcome, PermanentError):
                if self.platform.get_list(remote.id) is None:
                    self._rebuild_list(key, desired)
                    return
                result = self._bisect(batch, send, outcome)
                self._stop_if_systematic(batch, result, outcome, list_target(key), "membership")
            else:
                result = outcome
            ok = set(result.ok)
            self._settle(list_target(key), "membership", ok, result.failed)
            added = [c.contact_id for c in batch if c.add and c.contact_id in ok]
            removed = [c.contact_id for c in batch if not c.add and c.contact_id in ok]
            self._members_changed(key, remote.id, added, added=True)
            self._members_changed(key, remote.id, removed, added=False)
            self.report.members_added += len(added)
            self.report.members_removed += len(removed)
            kinds = {c.add for c in batch}
            verb = "change" if len(kinds) > 1 else "add" if True in kinds else "remove"
            self._checkpoint(f"{verb} members {key} batch {n}/{len(batches)}")
            self._tick("apply", n, len(batches), f"list {key}")

    def _send_all(
        self, batches: Sequence[Sequence[T]], send: Callable[[Sequence[T]], WriteResult]
    ) -> Iterator[tuple[int, Sequence[T], WriteResult | PermanentError]]:
        """Send each batch, up to ``concurrency`` at once, and yield ``(n, batch, result or the
        CRM's refusal)`` in batch order, so checkpoints and records follow the plan's order. Any
        other error stops the sends: batches not yet sent are dropped, those in flight finish,
        and their writes, unrecorded, are planned again by the next sync (writes are idempotent)."""
        if self.concurrency <= 1 or len(batches) <= 1:
            for n, batch in enumerate(batches, start=1):
                try:
                    yield n, batch, send(batch)
                except PermanentError as exc:
                    yield n, batch, exc
            return
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="segsync-apply") as pool:
            queued: deque[tuple[int, Sequence[T], Future[WriteResult]]] = deque()
            todo = iter(enumerate(batches, start=1))
            try:
                while True:
                    while len(queued) < 2 * self.concurrency and (nxt := next(todo, None)) is not None:
                        queued.append((nxt[0], nxt[1], pool.submit(send, nxt[1])))
                    if not queued:
                        return
                    n, batch, future = queued.popleft()
                    try:
                        result: WriteResult | PermanentError = future.result()
                    except PermanentError as exc:
                        result = exc
                    yield n, batch, result
            finally:
                for _, _, pending in queued:
                    pending.cancel()

    def _members_once(self, list_id: str, batch: Sequence[_Change]) -> WriteResult:
        add = [c.contact_id for c in batch if c.add]
        remove = [c.contact_id for c in batch if not c.add]
        if add and remove and isinstance(self.platform, MembershipChanges):
            return self.platform.change_members(list_id, add, remove)
        if remove:
            return self.platform.remove_members(list_id, remove)
        return self.platform.add_members(list_id, add)

    def _rebuild_list(self, key: str, desired: DesiredState) -> None:
        """The list vanished mid-run: recreate it and add every desired member (it is empty)."""
        spec = next(s for s in desired.lists if s.key == key)
        log.warning("%s: list %r was deleted mid-sync; recreating it", self.name, spec.name)
        self.state.forget_remote_id("list", key)
        self.rebuilt.add(key)
        dynamic = self.dynamic_lists and bool(spec.filter_field and spec.filter_value)
        remote = self._ensure_list(spec, dynamic)
        if remote.dynamic:
            return
        live = set(desired.values)
        held: frozenset[tuple[str, str]] = frozenset() if self.retry_failed else self.state.held_records()
        target = list_target(key)
        ids = sorted(
            (c for c in desired.members.get(key, ()) if c in live and (target, c) not in held),
            key=natural_key,
        )
        size = self.platform.limits.membership_batch
        for n, batch in enumerate(chunks(ids, size), start=1):
            result = self._guarded(batch, lambda b: self.platform.add_members(remote.id, b))
            self._settle(target, "membership", set(result.ok), result.failed)
            self._members_changed(key, remote.id, result.ok, added=True)
            self.report.members_added += len(result.ok)
            self._checkpoint(f"refill list {key} batch {n}")

    def _guarded(self, batch: Sequence[T], send: Callable[[Sequence[T]], WriteResult]) -> WriteResult:
        """Send a batch; if the CRM refuses it whole, split it to find the records it refuses."""
        try:
            return send(batch)
        except PermanentError as exc:
            return self._bisect(batch, send, exc)

    def _bisect(
        self, batch: Sequence[T], send: Callable[[Sequence[T]], WriteResult], exc: Exception
    ) -> WriteResult:
        if len(batch) == 1:
            return WriteResult(failed=(RecordFailure(record_id=_record_id(batch[0]), reason=str(exc)),))
        mid = len(batch) // 2
        left, right = self._guarded(batch[:mid], send), self._guarded(batch[mid:], send)
        return WriteResult(ok=left.ok + right.ok, failed=left.failed + right.failed)

    def _stop_if_systematic(
        self, batch: Sequence[object], result: WriteResult, exc: PermanentError, target: str, kind: str
    ) -> None:
        """Every record of a batch refused on its own too: the call itself is wrong (a plugin bug,
        a CRM change), so the job stops with the CRM's error. The records still count a failed
        run, so if it is about them after all, they are parked and later syncs get past them."""
        if len(batch) > 1 and not result.ok:
            self._settle(target, kind, set(), result.failed)
            raise exc

    def _settle(self, target: str, kind: str, ok: Set[str], failed: Sequence[RecordFailure]) -> None:
        if ok:
            self.state.clear_failures(target, ok)
        if failed:
            self.state.record_failures(
                self.info.job_id,
                kind,
                target,
                failed,
                max_failed_runs=self.max_failed_runs,
            )
            self.report.failed_records += len(failed)
            log.warning(
                "%s: %d record(s) failed in %s; they are retried next run", self.name, len(failed), target
            )


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _segment_changed(hooks: Hooks, *, change: SegmentChange) -> None:
    hooks.segment_changed(change)


@dataclass(frozen=True)
class _Change:
    """One membership change of a batch: add ``contact_id`` to the list, or remove it."""

    contact_id: str
    add: bool


def _record_id(item: object) -> str:
    return item.contact_id if isinstance(item, ContactUpdate | _Change) else str(item)


__all__ = ["ApplyPhase", "chunks"]
