"""Folders, lists and list memberships in the sandbox: at most 150 ids a change, 201 outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import Contact, ContactList, ts
from segsync_brevo.sandbox.contacts import filtered_contacts
from segsync_brevo.sandbox.wire import Endpoint, Routes, bad, missing, object_body, only, page

MEMBERSHIP_MAX = 150


class ListRoutes(Routes):
    """``/contacts/folders`` and ``/contacts/lists``: definitions, members, adds and removes."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("GET", r"/v3/contacts/folders", self.get_folders),
            ("POST", r"/v3/contacts/folders", self.create_folder),
            ("GET", r"/v3/contacts/folders/(?P<folder>\d+)/lists", self.get_folder_lists),
            ("GET", r"/v3/contacts/lists", self.get_lists),
            ("POST", r"/v3/contacts/lists", self.create_list),
            ("GET", r"/v3/contacts/lists/(?P<list>\d+)", self.get_list),
            ("DELETE", r"/v3/contacts/lists/(?P<list>\d+)", self.remove_list),
            ("GET", r"/v3/contacts/lists/(?P<list>\d+)/contacts", self.get_list_contacts),
            ("POST", r"/v3/contacts/lists/(?P<list>\d+)/contacts/add", self.add_to_list),
            ("POST", r"/v3/contacts/lists/(?P<list>\d+)/contacts/remove", self.remove_from_list),
        )

    # -- folders ----------------------------------------------------------------------------

    def get_folders(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("limit", "offset", "sort"))
        account = self.account
        folders = sorted(account.folders.items())
        out = []
        for fid, name in page(req, folders, default=10, high=50):
            size = len(
                {c for lst in account.lists.values() if lst.folder_id == fid for c in account.members[lst.id]}
            )
            out.append(
                {
                    "id": fid,
                    "name": name,
                    "totalBlacklisted": 0,
                    "totalSubscribers": size,
                    "uniqueSubscribers": size,
                }
            )
        return Response(200, {"folders": out, "count": len(folders)})

    def create_folder(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        body = object_body(req)
        name = body.get("name")
        if set(body) != {"name"} or not isinstance(name, str) or not name.strip():
            raise bad("a folder needs a name", "missing_parameter")
        return Response(201, {"id": self.account.new_folder(name)})

    def get_folder_lists(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("limit", "offset", "sort"))
        fid = int(m["folder"])
        if fid not in self.account.folders:
            raise missing("Folder")
        lists = [lst for lst in self.account.lists.values() if lst.folder_id == fid]
        shown = page(req, lists, default=10, high=50)
        return Response(
            200, {"lists": [self.account.list_json(lst, folder=False) for lst in shown], "count": len(lists)}
        )

    # -- lists ------------------------------------------------------------------------------

    def get_lists(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("limit", "offset", "sort"))
        lists = list(self.account.lists.values())
        shown = page(req, lists, default=10, high=50)
        return Response(
            200, {"lists": [self.account.list_json(lst, folder=True) for lst in shown], "count": len(lists)}
        )

    def create_list(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        body = object_body(req)
        name, folder = body.get("name"), body.get("folderId")
        if set(body) != {"name", "folderId"} or not isinstance(name, str) or not name.strip():
            raise bad("a list needs a name and a folderId", "missing_parameter")
        if isinstance(folder, bool) or not isinstance(folder, int) or folder not in self.account.folders:
            raise bad("folderId does not name an existing folder")
        return Response(201, {"id": self.account.new_list(name, folder)})

    def _list(self, m: re.Match[str]) -> ContactList:
        lst = self.account.lists.get(int(m["list"]))
        if lst is None:
            raise missing("List ID")
        return lst

    def get_list(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("startDate", "endDate"))
        lst = self._list(m)
        body = self.account.list_json(lst, folder=True) | {"createdAt": ts(lst.created), "dynamicList": False}
        return Response(200, body)

    def remove_list(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        self.account.delete_list(self._list(m).id)
        return Response(204)

    def get_list_contacts(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ("modifiedSince", "limit", "offset", "sort"))
        lst = self._list(m)
        members = self.account.members[lst.id]
        matching = filtered_contacts(self.account, req, [i for i in self.account.order if i in members])
        shown = page(req, matching, default=50, high=500)
        return Response(
            200, {"contacts": [self.account.contact_json(c) for c in shown], "count": len(matching)}
        )

    # -- memberships ------------------------------------------------------------------------

    @staticmethod
    def _targets(body: dict[str, Any], *, allow_all: bool) -> tuple[str, list[Any]]:
        keys = [k for k in ("emails", "ids", "extIds") if k in body]
        if allow_all and body.get("all") is True and not keys and set(body) == {"all"}:
            return "all", []
        if len(keys) != 1 or set(body) != set(keys):
            raise bad("send exactly one of emails, ids or extIds")
        key = keys[0]
        values = body[key]
        if not isinstance(values, list) or not values:
            raise bad(f"{key} must be a non-empty array", "missing_parameter")
        if len(values) > MEMBERSHIP_MAX:
            raise bad(f"{key} accepts at most {MEMBERSHIP_MAX} items per request", "out_of_range")
        if key == "ids" and any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise bad("ids must be integers")
        if key != "ids" and any(not isinstance(v, str) for v in values):
            raise bad(f"{key} must be strings")
        if key == "extIds":
            raise bad("extIds are not emulated by the segsync sandbox")
        return key, values

    def _resolve(self, key: str, value: Any) -> Contact | None:
        if key == "ids":
            return self.account.contacts.get(value)
        return self.account.by_email(str(value))

    def _remove_all(self, lst: ContactList) -> Response:
        members = self.account.members[lst.id]
        total = len(members)
        for cid in list(members):
            self.account.contacts[cid].lists.discard(lst.id)
            self.account.touch(self.account.contacts[cid])
        members.clear()
        pid = self.sandbox.imports.new({"kind": "remove_all"}, done=True)
        return Response(201, {"contacts": {"success": [], "failure": [], "total": total, "processId": pid}})

    def _change_members(self, req: Request, m: re.Match[str], *, add: bool) -> Response:
        only(req, ())
        lst = self._list(m)
        key, values = self._targets(object_body(req), allow_all=not add)
        if key == "all":
            return self._remove_all(lst)
        members = self.account.members[lst.id]
        success, failure = [], []
        for value in values:
            contact = self._resolve(key, value)
            if contact is None or (contact.id in members) == add:
                failure.append(value)  # unknown, or already in (out of) the list
                continue
            self.account.join(contact, lst.id, add=add)
            self.account.touch(contact)
            success.append(value)
        return Response(201, {"contacts": {"success": success, "failure": failure}})

    def add_to_list(self, req: Request, m: re.Match[str]) -> Response:
        return self._change_members(req, m, add=True)

    def remove_from_list(self, req: Request, m: re.Match[str]) -> Response:
        return self._change_members(req, m, add=False)
