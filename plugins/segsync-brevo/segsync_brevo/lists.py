"""Brevo lists: segsync's folder, its lists and the list imports go into, and memberships.

Creates here are ensure-steps of their own (find, else create under ``at_most_once``), so a
create whose answer was lost never makes a second folder or import list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from brevo.contacts import AddContactToListRequestBodyIds, RemoveContactFromListRequestBodyIds

from segsync import ConfigError, ListSpec, PermanentError, RecordFailure, RemoteList, WriteResult
from segsync_brevo.client import NO_RETRY
from segsync_brevo.session import BrevoSession, flat, not_found

MEMBERSHIP_BATCH = 150
#: Brevo's largest page for lists, folders and list members.
LISTS_PAGE = 50
#: Seconds a listing of the account's lists is trusted for lookups by name.
INDEX_MAX_AGE = 300.0
MEMBERS_PAGE = 500


def remote_list(item: Mapping[str, Any]) -> RemoteList:
    size = item.get("uniqueSubscribers", item.get("totalSubscribers"))
    return RemoteList(
        id=str(item["id"]), name=str(item["name"]), size=int(size) if size is not None else None
    )


class Lists:
    """segsync's folder and lists in one account, and who is in them."""

    def __init__(self, session: BrevoSession) -> None:
        self.session = session
        self.folder_id: int | None = None
        self.import_list_id: int | None = None
        self._lists: list[dict[str, Any]] | None = None
        self._listed_at = 0.0

    def _ensure(
        self, operation: str, find: Iterator[Mapping[str, Any]], name: str, create: Callable[[], Any]
    ) -> int:
        """The id of the item named ``name`` in ``find``, else of one ``create()`` made (at most once)."""
        for item in find:
            if item.get("name") == name:
                return int(item["id"])
        with self.session.runner.at_most_once():
            body = self.session.call(operation, create, write=True).body
        return int(body["id"])

    def folder(self) -> int:
        """The id of the folder segsync's lists live in, created on first use."""
        if self.folder_id is None:
            name, sdk = self.session.settings.folder_name, self.session.sdk

            def find_or_create() -> int:
                folders = self.session.paged(
                    "folders.list",
                    lambda offset, limit: sdk.contacts.with_raw_response.get_folders(
                        limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                    ),
                    "folders",
                    limit=LISTS_PAGE,
                )
                return self._ensure(
                    "folders.create",
                    flat(folders),
                    name,
                    lambda: sdk.contacts.with_raw_response.create_folder(name=name, request_options=NO_RETRY),
                )

            self.folder_id = self.session.runner.retrying("folders.ensure", find_or_create)
        return self.folder_id

    def import_list(self) -> int:
        """The list imports go into (Brevo requires one): segsync's own, in its folder."""
        if self.import_list_id is None:
            name, sdk = self.session.settings.import_list_name, self.session.sdk
            folder = self.folder()

            def find_or_create() -> int:
                lists = self.session.paged(
                    "folders.lists",
                    lambda offset, limit: sdk.contacts.with_raw_response.get_folder_lists(
                        folder, limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                    ),
                    "lists",
                    limit=LISTS_PAGE,
                )
                return self._ensure(
                    "lists.create",
                    flat(lists),
                    name,
                    lambda: sdk.contacts.with_raw_response.create_list(
                        folder_id=folder, name=name, request_options=NO_RETRY
                    ),
                )

            self.import_list_id = self.session.runner.retrying("import_list.ensure", find_or_create)
        return self.import_list_id

    def _index(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Every list of the account, read at most once a :data:`INDEX_MAX_AGE` (a first sync
        looked up 15 segments' lists with 15 full listings), kept current with our creates;
        ``fresh`` reads it again now."""
        now = self.session.runner.clock.now()
        if fresh or self._lists is None or now - self._listed_at > INDEX_MAX_AGE:
            self._listed_at = now
            sdk = self.session.sdk
            lists = self.session.paged(
                "lists.list",
                lambda offset, limit: sdk.contacts.with_raw_response.get_lists(
                    limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
                ),
                "lists",
                limit=LISTS_PAGE,
            )
            self._lists = [dict(i) for i in flat(lists)]
        return self._lists

    def find(self, name: str) -> RemoteList | None:
        """The list with exactly this name; with duplicates, the oldest in segsync's folder."""
        matches = [i for i in self._index() if i.get("name") == name]
        if not matches:
            return None
        folder = self.folder_id
        matches.sort(key=lambda i: (i.get("folderId") != folder, int(i["id"])))
        return remote_list(matches[0])

    def get(self, list_id: str) -> RemoteList | None:
        if not list_id.isdigit():
            return None
        sdk = self.session.sdk
        try:
            body = self.session.call(
                "lists.get",
                lambda: sdk.contacts.with_raw_response.get_list(int(list_id), request_options=NO_RETRY),
            ).body
        except PermanentError as exc:
            if not_found(exc):
                if self._lists is not None:  # seen gone: a lookup by name must not find it
                    self._lists = [i for i in self._lists if str(i.get("id")) != list_id]
                return None
            raise
        return remote_list(body)

    def get_many(self, list_ids: Sequence[str]) -> dict[str, RemoteList | None]:
        """Each list by id from one fresh listing (50 lists a page) instead of a call each."""
        by_id = {str(i.get("id")): i for i in self._index(fresh=True)}
        return {i: remote_list(by_id[i]) if i in by_id else None for i in list_ids}

    def create(self, spec: ListSpec, *, dynamic: bool) -> RemoteList:
        if dynamic:
            raise ConfigError("Brevo lists cannot filter on an attribute through the API; use static lists")
        if spec.name == self.session.settings.import_list_name:
            raise ConfigError(
                f"list name {spec.name!r} is the list segsync imports into; rename the segment or set "
                "[platforms.brevo] import_list_name"
            )
        folder = self.folder()
        sdk = self.session.sdk
        try:
            body = self.session.call(
                "lists.create",
                lambda: sdk.contacts.with_raw_response.create_list(
                    folder_id=folder, name=spec.name, request_options=NO_RETRY
                ),
                write=True,
            ).body
        except BaseException:
            self._lists = None  # it may have been made: the next lookup must list again
            raise
        if self._lists is not None:
            self._lists.append(
                {"id": body["id"], "name": spec.name, "folderId": folder, "uniqueSubscribers": 0}
            )
        return RemoteList(id=str(body["id"]), name=spec.name, size=0)

    def members(self, list_id: str) -> Iterator[str]:
        sdk = self.session.sdk
        members = self.session.paged(
            "lists.members",
            lambda offset, limit: sdk.contacts.with_raw_response.get_contacts_from_list(
                int(list_id), limit=limit, offset=offset, sort="asc", request_options=NO_RETRY
            ),
            "contacts",
            limit=MEMBERS_PAGE,
        )
        yield from (str(c["id"]) for c in flat(members))

    # -- memberships ------------------------------------------------------------------------

    def _send(self, list_id: int, ids: list[int], *, add: bool) -> set[int]:
        """One add/remove call of at most 150 ids; returns the ids Brevo reports as failures."""
        contacts = self.session.sdk.contacts.with_raw_response
        if add:
            request = AddContactToListRequestBodyIds(ids=ids)
            body = self.session.call(
                "lists.add",
                lambda: contacts.add_contact_to_list(list_id, request=request, request_options=NO_RETRY),
                write=True,
            ).body
        else:
            removal = RemoveContactFromListRequestBodyIds(ids=ids)
            body = self.session.call(
                "lists.remove",
                lambda: contacts.remove_contact_from_list(list_id, request=removal, request_options=NO_RETRY),
                write=True,
            ).body
        result = (body or {}).get("contacts") or {}
        return {int(i) for i in result.get("failure") or ()}

    def _members_of(self, list_id: int) -> set[int]:
        """Every member of a list, read 1000 at a time (cheaper than one look per contact)."""
        return {int(c["id"]) for c in flat(self.session.contact_pages(list_ids=[list_id]))}

    def change(self, list_id: str, contact_ids: Sequence[str], *, add: bool) -> WriteResult:
        ok: list[str] = []
        failed: list[RecordFailure] = []
        ids: list[int] = []
        for cid in contact_ids:
            if cid.isdigit():
                ids.append(int(cid))
            elif add:
                failed.append(RecordFailure(record_id=cid, reason="not a Brevo contact id"))
            else:
                ok.append(cid)  # no such contact can be a member
        lid = int(list_id)
        refused: set[int] = set()
        for start in range(0, len(ids), MEMBERSHIP_BATCH):
            refused |= self._send(lid, ids[start : start + MEMBERSHIP_BATCH], add=add)
        ok += [str(i) for i in ids if i not in refused]
        if not add:
            # "failure" on removal means "not in the list" or "no such contact": either way
            # the contact is not a member, which is what was asked.
            ok += [str(i) for i in sorted(refused)]
            return WriteResult(ok=tuple(ok), failed=tuple(failed))
        checked = self._refused_adds(list_id, refused)
        return WriteResult(ok=tuple(ok) + checked.ok, failed=tuple(failed) + checked.failed)

    def _refused_adds(self, list_id: str, refused: set[int]) -> WriteResult:
        """On adds, "failure" is either "already in the list" (fine) or "no such contact": look at
        each refused contact, or read the members once when that is fewer calls (after a
        retried call, all of them are refused)."""
        lid = int(list_id)
        members: set[int] = set()
        if len(refused) > 10:
            remote = self.get(list_id)
            page = self.session.settings.contacts_page
            if remote is not None and remote.size is not None and remote.size // page < len(refused):
                members = self._members_of(lid)
        ok: list[str] = []
        failed: list[RecordFailure] = []
        for i in sorted(refused):
            if i in members:
                ok.append(str(i))
                continue
            contact = self.session.contact(str(i))
            if contact is None:
                failed.append(RecordFailure(record_id=str(i), reason="contact no longer exists in Brevo"))
            elif lid in (contact.get("listIds") or ()):
                ok.append(str(i))
            else:
                failed.append(
                    RecordFailure(record_id=str(i), reason=f"Brevo refused to add it to list {lid}")
                )
        return WriteResult(ok=tuple(ok), failed=tuple(failed))
