"""The contact half of a job's pull: every contact, or only what changed since the last pull.

On a platform with :class:`~segsync.sync.platform.IncrementalContacts`, the contacts of the last
pull are kept in the state store (:mod:`segsync.sync.state.contacts`) with what segsync wrote
to them and the members of its lists. A job then asks the CRM only for the contacts created
since the cursor (modified too, when the rules read properties that change) and those deleted
since, and takes the rest from the cache. A full pull runs when there is no cache for the
project's shape, with ``--full``, and every ``full_every``: it repairs what an incremental
pull cannot see (a managed field or a list membership edited by hand, a deletion the CRM does
not report).

The cursor is the newest change the pull saw, or the job's start if that is earlier (contacts
changed while their page was behind the pull are newer than the start), less a second: it
assumes this machine's clock is no later than the CRM's (NTP keeps both right).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from segsync.core.models import Contact, ContactGone, FieldSpec, Rejection, RemoteList
from segsync.core.report import SyncReport
from segsync.sync.platform import ContactRecord, IncrementalContacts, Platform
from segsync.sync.pull import CURSOR_OVERLAP, full_pull_due
from segsync.sync.state import AccountStore, StateStore

log = logging.getLogger("segsync.engine")

#: The cursor that remembers when the last full contact pull ended (see ``full_every``).
FULL_CONTACTS = "contacts.full"
#: Properties that never change once a contact exists: rules reading only these need no
#: re-read of modified contacts (``email`` is also what writes travel with; platforms whose
#: writes depend on it read modified contacts regardless).
STABLE_PROPERTIES = frozenset({"email", "createdate"})


class _Spec(Protocol):
    """What of the job's :class:`~segsync.sync.engine.SyncSpec` the contact pull reads."""

    @property
    def properties(self) -> Sequence[str]: ...

    @property
    def fields(self) -> Sequence[FieldSpec]: ...


def contact_shape(spec: _Spec, inline: bool) -> str:
    """What the cached contacts were pulled for: the properties read and the fields managed."""
    fields = sorted((f.key, str(f.type)) for f in spec.fields)
    text = json.dumps([sorted(spec.properties), fields, inline])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ContactPhase:
    """Pulls the contacts of a job, from the CRM and the cache (see the module's docstring)."""

    if TYPE_CHECKING:  # what the job provides
        platform: Platform
        store: StateStore
        state: AccountStore
        spec: _Spec
        report: SyncReport
        name: str
        full: bool
        dry_run: bool
        full_every: dt.timedelta | None
        lists: dict[str, RemoteList | None]

        def _tick(self, phase: str, done: int, total: int | None = None, detail: str = "") -> None: ...

    #: Whether this job keeps the contact cache (the platform pulls contacts incrementally),
    #: and whether its contacts came from a full pull (list members are then read again).
    caching: bool = False
    pulled_all: bool = True
    #: The contacts this job read from the CRM (None: all of them).
    fresh_ids: set[str] | None = None

    def _pull_contacts(self) -> tuple[list[Contact], list[Rejection]]:
        platform = self.platform
        list_ids = {k: r.id for k, r in self.lists.items() if r is not None}
        inline = platform.memberships_inline
        self.caching = isinstance(platform, IncrementalContacts) and platform.incremental_contacts
        if not isinstance(platform, IncrementalContacts) or not self.caching:
            contacts, rejections, _ = self._read(
                platform.iter_contacts(self.spec.properties, self.spec.fields, list_ids)
            )
            return contacts, rejections
        shape = contact_shape(self.spec, inline)
        started = self.store.wall_clock.now()
        cached = None if self._full_due() else self.state.cached_contacts(shape, list_ids if inline else None)
        # a full pull without a cursor to go on from, or with a list whose members are unknown
        if cached is None or cached.cursor is None or not cached.lists_known:
            records = platform.iter_contacts(self.spec.properties, self.spec.fields, list_ids)
            contacts, rejections, _ = self._read(records)
            self.pulled_all = True
            if not self.dry_run:
                cursor = _cursor(platform.contacts_newest, started, None)
                self.state.save_contacts(
                    shape,
                    [*contacts, *rejections],
                    replace=True,
                    cursor=cursor,
                    lists=list_ids if inline else None,
                )
                self.state.set_cursor(started, FULL_CONTACTS)
            return contacts, rejections
        self.pulled_all = False
        reread = bool(set(self.spec.properties) - STABLE_PROPERTIES)
        changed = platform.iter_changed_contacts(
            cached.cursor, self.spec.properties, self.spec.fields, list_ids, reread=reread
        )
        fresh, fresh_rejections, gone = self._read(changed)
        if not self.dry_run:
            cursor = _cursor(platform.contacts_newest, started, cached.cursor)
            self.state.save_contacts(
                shape,
                [*fresh, *fresh_rejections],
                gone,
                replace=False,
                cursor=cursor,
                lists=list_ids if inline else None,
            )
        self.fresh_ids = {c.id for c in fresh}
        merged = _merged(cached.contacts, cached.rejections, fresh, fresh_rejections, gone)
        self.report.contacts_cached = sum(1 for c in merged[0] if c.id not in self.fresh_ids)
        log.info(
            "%s: %d contact(s) changed and %d gone since the last pull; the other %d from the cache",
            self.name,
            len(fresh) + len(fresh_rejections),
            len(gone),
            self.report.contacts_cached,
        )
        return merged

    def _read(self, records: Iterable[ContactRecord]) -> tuple[list[Contact], list[Rejection], list[str]]:
        contacts: list[Contact] = []
        rejections: list[Rejection] = []
        gone: list[str] = []
        for rec in records:
            if isinstance(rec, Rejection):
                rejections.append(rec)
            elif isinstance(rec, ContactGone):
                gone.append(rec.id)
            else:
                contacts.append(rec)
            done = len(contacts) + len(rejections)
            if done % 100 == 0:
                self._tick("pull_contacts", done)
        self.report.contacts_pulled = len(contacts)
        self._tick("pull_contacts", len(contacts) + len(rejections), len(contacts) + len(rejections))
        return contacts, rejections, gone

    def _full_due(self) -> bool:
        if self.full:
            return True
        return full_pull_due(
            self.state, self.store.wall_clock.now(), self.full_every, "contacts", FULL_CONTACTS, self.name
        )

    # -- list members -----------------------------------------------------------------------

    def _members(self, key: str, remote: RemoteList) -> set[str]:
        """The members of a list the CRM does not report inline: from the cache between full
        pulls, else read (and kept for the next job)."""
        if self.caching and not self.pulled_all:
            known = self.state.cached_members(key, remote.id)
            if known is not None:
                return known
        members = set(self.platform.list_members(remote.id))
        if self.caching and not self.dry_run:
            self.state.save_members(key, remote.id, members)
        return members

    def _list_created(self, key: str, remote: RemoteList) -> None:
        """A list this job created is empty: its members are known from here on."""
        if self.caching:
            self.state.save_members(key, remote.id, ())

    def _members_changed(self, key: str, list_id: str, ids: Iterable[str], *, added: bool) -> None:
        if self.caching:
            self.state.members_changed(key, list_id, ids, added=added)


def _cursor(
    newest: dt.datetime | None, started: dt.datetime, since: dt.datetime | None
) -> dt.datetime | None:
    if newest is None:
        return since
    moved = min(newest, started) - CURSOR_OVERLAP
    return moved if since is None or moved > since else since


def _merged(
    contacts: list[Contact],
    rejections: list[Rejection],
    fresh: list[Contact],
    fresh_rejections: list[Rejection],
    gone: list[str],
) -> tuple[list[Contact], list[Rejection]]:
    """The cache with the changes applied: a changed contact replaces its cached self (a new
    one goes last), a rejected or deleted one leaves."""
    out: dict[str, Contact] = {c.id: c for c in contacts}
    bad: dict[str, Rejection] = {r.record_id: r for r in rejections}
    for c in fresh:
        bad.pop(c.id, None)
        out[c.id] = c
    for r in fresh_rejections:
        out.pop(r.record_id, None)
        bad[r.record_id] = r
    for i in gone:
        out.pop(i, None)
        bad.pop(i, None)
    return list(out.values()), list(bad.values())


__all__ = ["FULL_CONTACTS", "STABLE_PROPERTIES", "ContactPhase", "contact_shape"]
