"""The contact cache: the contacts of the last pull, what segsync wrote to them since, and the
members of segsync's lists, so an incremental sync reads from the CRM only what changed.

It is kept under a *shape* (the properties pulled, the managed fields): a project that starts
reading another property or managing another field finds no cache and pulls every contact
again. A list's members are known only for the list id they were read or written under, so a
list recreated in the CRM is read again. Writes reach the cache only once the CRM confirmed
them, in the same transaction as the values-written record: a job killed between the two
costs an idempotent rewrite next time, never a missed one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from segsync.core.models import Contact, ContactUpdate, Rejection
from segsync.sync.state.base import decode_value, encode_value
from segsync.sync.state.data import DataStore
from segsync.sync.state.db import Db

#: The cursor name of the contact pulls.
CONTACTS_CURSOR = "contacts"
#: A row when the members of a list are known under a list id (members may be none).
_LIST_KNOWN = "SELECT 1 FROM contact_lists WHERE platform=? AND account=? AND list_key=? AND list_id=?"


@dataclass(frozen=True)
class CachedContacts:
    """What the cache holds for one account: its contacts and rejected contact records, in the
    order they were first pulled, and the cursor of the last contact pull."""

    contacts: list[Contact]
    rejections: list[Rejection]
    cursor: dt.datetime | None
    #: False when a list asked for (memberships inline) has no members known under its id
    lists_known: bool = True


def _encode(contact: Contact) -> str:
    managed = {k: encode_value(v) for k, v in contact.managed.items()}
    return json.dumps(
        {"e": contact.email, "p": dict(contact.properties), "m": managed}, separators=(",", ":")
    )


def _decode(contact_id: str, text: str, lists: frozenset[str] | None) -> Contact:
    data = json.loads(text)
    managed = {k: decode_value(v) for k, v in data["m"].items()}
    # Built from a validated contact's own values: validating them again costs 10× the read.
    return Contact.model_construct(
        id=contact_id, email=data["e"], properties=data["p"], managed=managed, lists=lists
    )


class ContactStore(DataStore):
    """The contact cache's reads and writes (see the module's docstring)."""

    def cached_contacts(
        self, platform: str, account: str, shape: str, lists: Mapping[str, str] | None
    ) -> CachedContacts | None:
        """The cache under ``shape``, or None when it was kept under another one (or never).
        ``lists`` (key → list id), for platforms with memberships inline: each contact's
        ``lists`` filled from the members known under those ids."""
        rows = self._rows(
            "SELECT shape FROM contact_shapes WHERE platform=? AND account=?", (platform, account)
        )
        if not rows or rows[0]["shape"] != shape:
            return None
        member_of: dict[str, set[str]] = {}
        lists_known = True
        for key, list_id in (lists or {}).items():
            members = self.cached_members(platform, account, key, list_id)
            lists_known = lists_known and members is not None
            for cid in members or ():
                member_of.setdefault(cid, set()).add(key)
        contacts: list[Contact] = []
        rejections: list[Rejection] = []
        for r in self._rows(
            "SELECT contact_id, rejected, data FROM contact_cache WHERE platform=? AND account=? "
            "ORDER BY seq",
            (platform, account),
        ):
            if r["rejected"]:
                rejections.append(Rejection.model_validate_json(r["data"]))
            else:
                keys = None if lists is None else frozenset(member_of.get(r["contact_id"], ()))
                contacts.append(_decode(r["contact_id"], r["data"], keys))
        cursor = self.cursor(platform, account, CONTACTS_CURSOR)
        return CachedContacts(contacts, rejections, cursor, lists_known)

    def save_contacts(
        self,
        platform: str,
        account: str,
        shape: str,
        records: Sequence[Contact | Rejection],
        gone: Iterable[str] = (),
        *,
        replace: bool,
        cursor: dt.datetime | None,
        lists: Mapping[str, str] | None = None,
    ) -> None:
        """Save pulled contacts (and rejected contact records) and forget ``gone``, with the
        cursor, in one transaction. ``replace``: a full pull, which replaces the cache and
        its shape. ``lists`` (key → id, memberships inline): each saved contact's members of
        those lists replace what was known of it."""
        with self._tx() as db:
            if replace:
                self._clear(db, platform, account)
                db.execute("INSERT INTO contact_shapes VALUES (?, ?, ?)", (platform, account, shape))
                if lists is not None:
                    self._known_lists(db, platform, account, lists)
            ids = [r.record_id if isinstance(r, Rejection) else r.id for r in records]
            # A changed contact keeps its place; its list members go only where the pull
            # reports them (inline), else with a rejected or deleted contact.
            seqs = self._seqs(db, platform, account, ids)
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM contact_cache WHERE platform=? AND account=?",
                (platform, account),
            ).fetchone()[0]
            leaving = [*gone, *(r.record_id for r in records if isinstance(r, Rejection))]
            self._forget(
                db, platform, account, [*gone, *ids], members=leaving if lists is None else [*leaving, *ids]
            )
            rows = []
            for cid, rec in zip(ids, records, strict=True):
                if cid not in seqs:
                    seq += 1
                rejected = isinstance(rec, Rejection)
                data = rec.model_dump_json() if isinstance(rec, Rejection) else _encode(rec)
                rows.append((platform, account, cid, seqs.get(cid, seq), int(rejected), data))
            db.executemany("INSERT OR REPLACE INTO contact_cache VALUES (?, ?, ?, ?, ?, ?)", rows)
            if lists is not None:
                members = [
                    (platform, account, key, lists[key], c.id)
                    for c in records
                    if isinstance(c, Contact) and c.lists
                    for key in c.lists
                    if key in lists
                ]
                db.executemany("INSERT OR REPLACE INTO contact_members VALUES (?, ?, ?, ?, ?)", members)
            self._write_cursor(db, platform, account, CONTACTS_CURSOR, cursor)

    def _seqs(self, db: Db, platform: str, account: str, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            found.update(
                db.execute(
                    f"SELECT contact_id, seq FROM contact_cache WHERE platform=? AND account=? "
                    f"AND contact_id IN ({','.join('?' * len(part))})",
                    (platform, account, *part),
                ).fetchall()
            )
        return found

    def _forget(
        self,
        db: Db,
        platform: str,
        account: str,
        ids: Sequence[str],
        *,
        members: Sequence[str],
    ) -> None:
        for table, which in (("contact_cache", ids), ("contact_members", members)):
            db.executemany(
                f"DELETE FROM {table} WHERE platform=? AND account=? AND contact_id=?",
                [(platform, account, i) for i in which],
            )

    def _known_lists(self, db: Db, platform: str, account: str, lists: Mapping[str, str]) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO contact_lists VALUES (?, ?, ?, ?)",
            [(platform, account, key, list_id) for key, list_id in lists.items()],
        )

    def _clear(self, db: Db, platform: str, account: str) -> None:
        for table in ("contact_cache", "contact_members", "contact_lists", "contact_shapes"):
            db.execute(f"DELETE FROM {table} WHERE platform=? AND account=?", (platform, account))

    def forget_contact_cache(self, platform: str, account: str) -> None:
        """Drop the cache: the next sync pulls every contact."""
        with self._tx() as db:
            self._clear(db, platform, account)
            self._write_cursor(db, platform, account, CONTACTS_CURSOR, None)

    # -- list members ---------------------------------------------------------------------

    def cached_members(self, platform: str, account: str, key: str, list_id: str) -> set[str] | None:
        """The members of list ``key`` as last known under ``list_id``; None when unknown."""
        if not self._rows(_LIST_KNOWN, (platform, account, key, list_id)):
            return None
        return set(
            self._column(
                "SELECT contact_id FROM contact_members WHERE platform=? AND account=? AND list_key=? "
                "AND list_id=?",
                (platform, account, key, list_id),
            )
        )

    def save_members(
        self, platform: str, account: str, key: str, list_id: str, members: Iterable[str]
    ) -> None:
        """The members of list ``key`` as read (or created empty) under ``list_id``."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM contact_members WHERE platform=? AND account=? AND list_key=?",
                (platform, account, key),
            )
            self._known_lists(db, platform, account, {key: list_id})
            db.executemany(
                "INSERT OR REPLACE INTO contact_members VALUES (?, ?, ?, ?, ?)",
                [(platform, account, key, list_id, c) for c in members],
            )

    def members_changed(
        self, platform: str, account: str, key: str, list_id: str, ids: Iterable[str], *, added: bool
    ) -> None:
        """Confirmed adds or removes (kept only where the list's members are known)."""
        rows = [(platform, account, key, list_id, c) for c in ids]
        with self._tx() as db:
            if db.execute(_LIST_KNOWN, (platform, account, key, list_id)).fetchone() is None:
                return
            if added:
                db.executemany("INSERT OR REPLACE INTO contact_members VALUES (?, ?, ?, ?, ?)", rows)
            else:
                db.executemany(
                    "DELETE FROM contact_members WHERE platform=? AND account=? AND list_key=? "
                    "AND list_id=? AND contact_id=?",
                    rows,
                )

    # -- values written -------------------------------------------------------------------

    def record_written(
        self, platform: str, account: str, job_id: int, updates: Iterable[ContactUpdate]
    ) -> None:
        """What the CRM confirmed it now holds: kept as the values last written, and folded
        into the cached contacts in the same transaction."""
        updates = list(updates)
        now = self._now()
        rows = [
            (platform, account, u.contact_id, key, encode_value(v), job_id, now)
            for u in updates
            for key, v in u.values.items()
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO written_values VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._cache_written(db, platform, account, updates)

    def _cache_written(self, db: Db, platform: str, account: str, updates: Sequence[ContactUpdate]) -> None:
        """Fold confirmed writes into the cached contacts (those the cache holds)."""
        by_id = {u.contact_id: u for u in updates}
        if not by_id:
            return
        marks = ",".join("?" * len(by_id))
        found = db.execute(
            f"SELECT contact_id, data FROM contact_cache WHERE platform=? AND account=? AND rejected=0 "
            f"AND contact_id IN ({marks})",
            (platform, account, *by_id),
        ).fetchall()
        rows = []
        for cid, text in found:
            data = json.loads(text)
            data["m"].update({k: encode_value(v) for k, v in by_id[cid].values.items()})
            rows.append((json.dumps(data, separators=(",", ":")), platform, account, cid))
        db.executemany(
            "UPDATE contact_cache SET data=? WHERE platform=? AND account=? AND contact_id=?", rows
        )


__all__ = ["CONTACTS_CURSOR", "CachedContacts", "ContactStore"]
