"""Lists and their memberships in the sandbox: MANUAL, DYNAMIC and SNAPSHOT lists, add-and-remove."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from segsync.sandbox import Request, Response
from segsync_hubspot.sandbox.account import HubList
from segsync_hubspot.sandbox.values import check_filter_branch
from segsync_hubspot.sandbox.wire import (
    MEMBERSHIP_PAGE_MAX,
    Endpoint,
    Routes,
    bool_arg,
    cursor_arg,
    error,
    id_page,
    json_body,
    limit_arg,
    names_arg,
)

LISTS_READ = ("crm.lists.read",)
LISTS_WRITE = ("crm.lists.read", "crm.lists.write")  # membership writes need read too (facts §3.7)


class ListRoutes(Routes):
    """List definitions (create, read by id or name, delete) and memberships."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("POST", r"/crm/v3/lists/?", self.create_list, ("crm.lists.write",)),
            ("GET", r"/crm/v3/lists/?", self.get_lists, LISTS_READ),
            ("GET", r"/crm/v3/lists/object-type-id/([^/]+)/name/(.+)", self.get_list_by_name, LISTS_READ),
            ("GET", r"/crm/v3/lists/(\d+)", self.get_list, LISTS_READ),
            ("DELETE", r"/crm/v3/lists/(\d+)", self.remove_list, LISTS_WRITE),
            ("PUT", r"/crm/v3/lists/([^/]+)/memberships/add-and-remove", self.change_members, LISTS_WRITE),
            ("GET", r"/crm/v3/lists/([^/]+)/memberships", self.get_members, LISTS_READ),
        )

    def _list(self, list_id: str) -> HubList:
        found = self.account.lists.get(list_id)
        if found is None or found.deleted:
            raise error(404, f"List {list_id} does not exist.")
        return found

    def _checked_create(self, body: Any) -> tuple[str, str, Any]:
        """(name, processingType, filterBranch) of a valid ``ListCreateRequest``, else a 400."""
        if not isinstance(body, dict):
            raise error(400, "Invalid input: the body must be a ListCreateRequest object")
        missing = [k for k in ("name", "objectTypeId", "processingType") if not isinstance(body.get(k), str)]
        if missing:
            raise error(400, f"Invalid input: missing required field(s) {', '.join(missing)}")
        name, kind = body["name"].strip(), body["processingType"]
        if not name:
            raise error(400, "Invalid input: list name must not be empty")
        if body["objectTypeId"] != "0-1":
            raise error(400, "the sandbox keeps contact lists (objectTypeId 0-1) only")
        if kind not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
            raise error(400, f"processingType must be MANUAL, DYNAMIC or SNAPSHOT, not {kind!r}")
        branch = body.get("filterBranch")
        if kind == "MANUAL" and branch is not None:
            raise error(400, "MANUAL lists take no filterBranch")
        if kind != "MANUAL":
            if branch is None:
                raise error(400, f"{kind} lists need a filterBranch")
            problem = check_filter_branch(branch, self.account.properties["contacts"])
            if problem:
                raise error(400, f"Invalid filterBranch: {problem}")
        return name, kind, branch

    def create_list(self, req: Request, m: re.Match[str]) -> Response:
        name, kind, branch = self._checked_create(json_body(req))
        if self.account.find_list_by_name(name) is not None:
            raise error(
                400,
                f"A list named '{name}' already exists; list names must be unique.",
                "VALIDATION_ERROR",
                subCategory="ILS.DUPLICATE_LIST_NAMES",
            )
        stamp = self.now()
        new = HubList(self.account.new_list_id(), name, kind, stamp, filter_branch=branch)
        if kind == "SNAPSHOT":  # filters evaluated once, then kept by hand
            new.members = {
                c: stamp for c in self.account.list_members(HubList("", "", "DYNAMIC", stamp, branch))
            }
            new.filter_branch = branch
        self.account.lists[new.id] = new
        return Response(200, {"list": self.account.list_json(new)})

    def get_lists(self, req: Request, m: re.Match[str]) -> Response:
        include = bool_arg(req, "includeFilters")
        found = [self.account.lists.get(i) for i in names_arg(req, "listIds")]
        lists = [
            self.account.list_json(lst, include_filters=include) for lst in found if lst and not lst.deleted
        ]
        return Response(200, {"lists": lists})

    def get_list(self, req: Request, m: re.Match[str]) -> Response:
        found = self._list(m.group(1))
        return Response(
            200, {"list": self.account.list_json(found, include_filters=bool_arg(req, "includeFilters"))}
        )

    def get_list_by_name(self, req: Request, m: re.Match[str]) -> Response:
        if m.group(1) != "0-1":
            raise error(400, "the sandbox keeps contact lists (objectTypeId 0-1) only")
        found = self.account.find_list_by_name(m.group(2))
        if found is None:
            raise error(404, "List does not exist with the given name.")
        return Response(
            200, {"list": self.account.list_json(found, include_filters=bool_arg(req, "includeFilters"))}
        )

    def remove_list(self, req: Request, m: re.Match[str]) -> Response:
        self._list(m.group(1)).deleted = True
        return Response(204)

    def _membership_change(self, target: HubList, body: Any) -> tuple[list[str], list[str]]:
        """(ids to add, ids to remove) of a valid add-and-remove on ``target``, else a 400."""
        keys = ("recordIdsToAdd", "recordIdsToRemove")
        if not isinstance(body, dict) or any(
            not isinstance(body.get(k), list) or not all(isinstance(i, str) for i in body[k]) for k in keys
        ):
            raise error(
                400, "Invalid input: recordIdsToAdd and recordIdsToRemove are both required lists of ids"
            )
        adds, removes = list(dict.fromkeys(body[keys[0]])), list(dict.fromkeys(body[keys[1]]))
        if len(adds) + len(removes) > self.sandbox.membership_max:
            raise error(400, f"Too many record ids: at most {self.sandbox.membership_max} per request")
        if set(adds) & set(removes):
            raise error(400, "Invalid input: a record id cannot be added and removed in one request")
        if target.processing_type == "DYNAMIC":
            raise error(
                400, f"List {target.id} is DYNAMIC; only MANUAL and SNAPSHOT lists take membership changes"
            )
        return adds, removes

    def change_members(self, req: Request, m: re.Match[str]) -> Response:
        target = self._list(m.group(1))
        adds, removes = self._membership_change(target, json_body(req))
        stamp = self.now()
        alive = {c.id for c in self.account.live(self.account.contacts)}
        missing = [i for i in (*adds, *removes) if i not in alive]
        added = [i for i in adds if i in alive and i not in target.members]
        removed = [i for i in removes if i in target.members and i in alive]
        for i in added:
            target.members[i] = stamp
        for i in removed:
            del target.members[i]
        if added or removed:
            target.updated_at = stamp
        return Response(
            200, {"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}
        )

    def get_members(self, req: Request, m: re.Match[str]) -> Response:
        target = self._list(m.group(1))
        limit = limit_arg(req, 100, MEMBERSHIP_PAGE_MAX)
        if req.arg("before") is not None:
            raise error(400, "the sandbox pages memberships forwards only (after)")
        members = self.account.list_members(target)
        page, nxt = id_page(members, cursor_arg(req.arg("after")), limit)
        stamp = target.updated_at or target.created_at
        results = [{"recordId": i, "membershipTimestamp": target.members.get(i, stamp)} for i in page]
        return Response(200, {"results": results, "total": len(members), **self.paging(req, nxt)})
