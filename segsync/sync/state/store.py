"""The state store as one object, and the view of it that one CRM account's sync job uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence

from segsync.core.columns.ledger import LedgerRows
from segsync.core.models import Contact, ContactUpdate, FieldValue, Purchase, RecordFailure, Rejection
from segsync.core.report import JobInfo
from segsync.sync.state.contacts import CachedContacts, ContactStore
from segsync.sync.state.data import PullState
from segsync.sync.state.events import EventStore
from segsync.sync.state.jobs import JobStore
from segsync.sync.state.locking import LockStore


class StateStore(LockStore, JobStore, ContactStore, EventStore):
    """The project's state file. Safe to share between threads; several processes may open it."""

    def account(self, platform: str, account: str) -> AccountStore:
        """The state of one CRM account: the store keeps everything per ``(platform, account)``,
        this view fixes both once, so a job cannot mix two accounts' ids, cursors or locks."""
        return AccountStore(self, platform, account)


class AccountStore:
    """The state of one account (``store.account(platform, account)``)."""

    def __init__(self, store: StateStore, platform: str, account: str) -> None:
        self.store = store
        self.platform = platform
        self.account = account

    # -- lock and job ---------------------------------------------------------------------

    def acquire_lock(self) -> int | None:
        return self.store.acquire_lock(self.platform, self.account)

    def heartbeat(self) -> None:
        self.store.heartbeat(self.platform, self.account)

    def release_lock(self) -> None:
        self.store.release_lock(self.platform, self.account)

    def start_job(self, *, as_of: dt.date, dry_run: bool, full: bool) -> JobInfo:
        return self.store.start_job(self.platform, self.account, as_of=as_of, dry_run=dry_run, full=full)

    # -- ids, values, purchases -------------------------------------------------------------

    def remote_ids(self, kind: str) -> dict[str, tuple[str, str]]:
        return self.store.remote_ids(self.platform, self.account, kind)

    def set_remote_id(self, kind: str, key: str, remote_id: str, name: str) -> None:
        self.store.set_remote_id(self.platform, self.account, kind, key, remote_id, name)

    def forget_remote_id(self, kind: str, key: str) -> None:
        self.store.forget_remote_id(self.platform, self.account, kind, key)

    def record_written(self, job_id: int, updates: Iterable[ContactUpdate]) -> None:
        self.store.record_written(self.platform, self.account, job_id, updates)

    def written_values(self) -> dict[str, dict[str, FieldValue]]:
        return self.store.written_values(self.platform, self.account)

    def purchases(self) -> list[Purchase]:
        return self.store.purchases(self.platform, self.account)

    def ledger(self) -> AccountLedger:
        """The purchase ledger as compute takes it (read once, when first asked)."""
        return AccountLedger(self)

    def compact_ledger(self, *, force: bool = False) -> bool:
        return self.store.compact_ledger(self.platform, self.account, force=force)

    def ledger_counts(self) -> dict[str, int]:
        return self.store.ledger_counts(self.platform, self.account)

    def cursor(self, name: str = "purchases") -> dt.datetime | None:
        return self.store.cursor(self.platform, self.account, name)

    def set_cursor(self, value: dt.datetime | None, name: str = "purchases") -> None:
        self.store.set_cursor(self.platform, self.account, value, name)

    def save_purchases(
        self,
        purchases: Sequence[Purchase],
        gone: Iterable[str] = (),
        *,
        replace_all: bool,
        cursor: dt.datetime | None,
    ) -> None:
        self.store.save_purchases(
            self.platform, self.account, purchases, gone, replace_all=replace_all, cursor=cursor
        )

    def pull_state(self) -> PullState | None:
        return self.store.pull_state(self.platform, self.account)

    def save_pull_chunk(self, purchases: Sequence[Purchase], gone: Iterable[str], state: PullState) -> None:
        self.store.save_pull_chunk(self.platform, self.account, purchases, gone, state)

    def finish_pull(
        self, purchases: Sequence[Purchase], gone: Iterable[str], *, full: bool, cursor: dt.datetime | None
    ) -> None:
        self.store.finish_pull(self.platform, self.account, purchases, gone, full=full, cursor=cursor)

    def save_pending_chunk(self, purchases: Sequence[Purchase], gone: Iterable[str]) -> None:
        self.store.save_pending_chunk(self.platform, self.account, purchases, gone)

    def discard_pull(self) -> None:
        self.store.discard_pull(self.platform, self.account)

    # -- contacts ---------------------------------------------------------------------------

    def cached_contacts(self, shape: str, lists: Mapping[str, str] | None) -> CachedContacts | None:
        return self.store.cached_contacts(self.platform, self.account, shape, lists)

    def save_contacts(
        self,
        shape: str,
        records: Sequence[Contact | Rejection],
        gone: Iterable[str] = (),
        *,
        replace: bool,
        cursor: dt.datetime | None,
        lists: Mapping[str, str] | None = None,
    ) -> None:
        self.store.save_contacts(
            self.platform, self.account, shape, records, gone, replace=replace, cursor=cursor, lists=lists
        )

    def forget_contact_cache(self) -> None:
        self.store.forget_contact_cache(self.platform, self.account)

    def cached_members(self, key: str, list_id: str) -> set[str] | None:
        return self.store.cached_members(self.platform, self.account, key, list_id)

    def save_members(self, key: str, list_id: str, members: Iterable[str]) -> None:
        self.store.save_members(self.platform, self.account, key, list_id, members)

    def members_changed(self, key: str, list_id: str, ids: Iterable[str], *, added: bool) -> None:
        self.store.members_changed(self.platform, self.account, key, list_id, ids, added=added)

    # -- per-record failures ----------------------------------------------------------------

    def record_failures(
        self,
        job_id: int,
        kind: str,
        operation: str,
        failures: Iterable[RecordFailure],
        *,
        max_failed_runs: int,
    ) -> None:
        self.store.record_failures(
            self.platform, self.account, job_id, kind, operation, failures, max_failed_runs=max_failed_runs
        )

    def clear_failures(self, operation: str, record_ids: Iterable[str]) -> None:
        self.store.clear_failures(self.platform, self.account, operation, record_ids)

    def forget_failures_except(self, live_ids: Iterable[str]) -> int:
        return self.store.forget_failures_except(self.platform, self.account, live_ids)

    def held_records(self) -> frozenset[tuple[str, str]]:
        return self.store.held_records(self.platform, self.account)

    def release_given_up(self) -> int:
        return self.store.release_given_up(self.platform, self.account)


class AccountLedger:
    """One account's purchase ledger for compute (a
    :class:`~segsync.core.columns.ledger.PurchaseLedger`): its columns, read once; iterated,
    its :class:`Purchase` objects (for small projects' own compute and the object oracle)."""

    def __init__(self, state: AccountStore) -> None:
        self.state = state
        self._rows: LedgerRows | None = None
        self._objects: list[Purchase] | None = None

    def rows(self) -> LedgerRows:
        if self._rows is None:
            self._rows = self.state.store.ledger_rows(self.state.platform, self.state.account)
        return self._rows

    def __iter__(self) -> Iterator[Purchase]:
        if self._objects is None:
            self._objects = self.state.purchases()
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self.rows())


__all__ = ["AccountLedger", "AccountStore", "StateStore"]
