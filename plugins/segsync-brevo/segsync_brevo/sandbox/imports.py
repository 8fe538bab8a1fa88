"""Contact imports in the sandbox: ``POST /contacts/import`` and the process that applies it.

An import is accepted (202 ``{processId}``) and applied only when its process completes: one
step per status poll (``queued`` → ``in_process`` → ``completed``), or by itself after a while.
Processes complete in the order they were sent; every handler first applies those that are due.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from segsync import Clock
from segsync.sandbox import Request, Response
from segsync_brevo.sandbox.account import BrevoAccount
from segsync_brevo.sandbox.wire import EMAIL, Endpoint, Routes, bad, missing, object_body, only

MAX_IMPORT_BYTES = 10 * 1024 * 1024
_IMPORT_FIELDS = {
    "fileUrl", "fileBody", "jsonBody", "listIds", "notifyUrl", "newList", "emailBlacklist",
    "disableNotification", "smsBlacklist", "updateExistingContacts", "emptyContactsAttributes",
    "consentGroupIds",
}  # fmt: skip


@dataclass
class Process:
    id: int
    started: float
    payload: dict[str, Any]
    polls: int = 0
    done: bool = False
    invalid_emails: list[str] = field(default_factory=list)
    duplicate_emails: list[str] = field(default_factory=list)


class ImportQueue:
    """The account's processes: imports waiting to be applied, and finished ones."""

    def __init__(self, account: BrevoAccount, clock: Clock, step_seconds: float) -> None:
        self.account = account
        self.clock = clock
        self.step_seconds = step_seconds
        self.processes: dict[int, Process] = {}

    def new(self, payload: dict[str, Any], *, done: bool = False) -> int:
        pid = self.account.take("process")
        self.processes[pid] = Process(pid, self.clock.now(), payload, done=done)
        return pid

    def step(self, proc: Process) -> int:
        """0 queued, 1 in_process, 2 completed: one step per poll, or by itself over time."""
        if proc.done:
            return 2
        by_time = int((self.clock.now() - proc.started) // self.step_seconds)
        return min(2, max(proc.polls - 1, by_time))

    def settle(self) -> None:
        """Apply imports that completed by themselves, in the order they were sent."""
        for proc in sorted(self.processes.values(), key=lambda p: p.id):
            if not proc.done and self.step(proc) >= 2:
                self.complete(proc.id)

    def complete(self, pid: int) -> None:
        """Complete process ``pid`` and every earlier one still open."""
        for proc in sorted(self.processes.values(), key=lambda p: p.id):
            if proc.id > pid:
                break
            if not proc.done:
                proc.done = True
                self._apply(proc)

    def _apply(self, proc: Process) -> None:
        body = proc.payload
        if body.get("kind") == "remove_all":
            return
        items: list[dict[str, Any]] = body["jsonBody"]
        account = self.account
        update = bool(body.get("updateExistingContacts"))
        erase = bool(body.get("emptyContactsAttributes"))
        list_ids = list(body.get("listIds") or ())
        new_list = body.get("newList")
        if new_list is not None:
            list_ids.append(account.new_list(new_list["listName"], new_list["folderId"]))
        # With emptyContactsAttributes an import is a table: a column any item has is empty in
        # the items that lack it, and empty cells erase what the contact holds.
        columns = {k.upper() for item in items for k in item.get("attributes") or {}}
        seen: set[str] = set()
        for item in items:
            email = item.get("email")
            if not isinstance(email, str) or not EMAIL.fullmatch(email):
                proc.invalid_emails.append(str(email))
                continue
            if email.casefold() in seen:  # one contact per email: a later row is a duplicate
                proc.duplicate_emails.append(email)
                continue
            seen.add(email.casefold())
            found = account.by_email(email)
            contact = found or account.new_contact(email)
            if found is None or update:
                values = {k.upper(): v for k, v in (item.get("attributes") or {}).items()}
                for name in columns if erase else values:
                    attr = account.attributes.get(name)
                    if attr is not None:  # Brevo ignores attributes the account does not have
                        account.set_attribute(
                            contact, attr, values.get(name, ""), erase=erase and found is not None
                        )
            for lid in list_ids:
                if lid in account.lists:
                    account.join(contact, lid)
            account.touch(contact)


class ImportRoutes(Routes):
    """``POST /contacts/import`` and ``GET /processes/{id}``."""

    def endpoints(self) -> Iterable[Endpoint]:
        return (
            ("POST", r"/v3/contacts/import", self.import_contacts),
            ("GET", r"/v3/processes/(?P<process>\d+)", self.get_process),
        )

    @property
    def queue(self) -> ImportQueue:
        return self.sandbox.imports

    def _check_items(self, body: dict[str, Any]) -> None:
        unknown = set(body) - _IMPORT_FIELDS
        if unknown:
            raise bad(f"unknown body field {sorted(unknown)[0]}")
        sources = [k for k in ("fileUrl", "fileBody", "jsonBody") if k in body]
        if len(sources) != 1:
            raise bad("send exactly one of fileUrl, fileBody or jsonBody", "missing_parameter")
        if sources[0] != "jsonBody":
            raise bad("the segsync sandbox emulates jsonBody imports only")
        items = body["jsonBody"]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise bad("jsonBody must be a non-empty array of objects")
        for item in items:
            if set(item) - {"email", "attributes"} or not isinstance(item.get("attributes", {}), dict):
                raise bad("each jsonBody item is {email, attributes}")

    def _check_lists(self, body: dict[str, Any]) -> None:
        list_ids, new_list = body.get("listIds"), body.get("newList")
        if list_ids is not None:
            if not isinstance(list_ids, list) or any(
                isinstance(i, bool) or not isinstance(i, int) for i in list_ids
            ):
                raise bad("listIds must be an array of integers")
            absent = [i for i in list_ids if i not in self.account.lists]
            if absent:
                raise bad(f"list {absent[0]} does not exist")
        if new_list is not None and (
            not isinstance(new_list, dict)
            or not isinstance(new_list.get("listName"), str)
            or new_list.get("folderId") not in self.account.folders
        ):
            raise bad("newList needs a listName and an existing folderId")
        if self.sandbox.require_import_list and not list_ids and new_list is None:
            raise bad("listIds is mandatory if newList is not defined", "missing_parameter")

    def import_contacts(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        if len(req.body) > MAX_IMPORT_BYTES:
            raise bad("the import body is larger than 10 MB; split it or use fileUrl", "out_of_range")
        body = object_body(req)
        self._check_items(body)
        self._check_lists(body)
        if body.get("emptyContactsAttributes") and not body.get("updateExistingContacts"):
            raise bad("emptyContactsAttributes is only available with updateExistingContacts")
        return Response(202, {"processId": self.queue.new(body)})

    def get_process(self, req: Request, m: re.Match[str]) -> Response:
        only(req, ())
        proc = self.queue.processes.get(int(m["process"]))
        if proc is None:
            raise missing("Process")
        proc.polls += 1
        step = self.queue.step(proc)
        if step == 2:
            self.queue.complete(proc.id)
        body: dict[str, Any] = {
            "id": proc.id,
            "name": "IMPORTUSER",
            "status": ("queued", "in_process", "completed")[step],
        }
        if step == 2 and proc.payload.get("kind") != "remove_all":
            reports = {"invalid_emails": proc.invalid_emails, "duplicate_email_id": proc.duplicate_emails}
            base = self.sandbox.base_url
            body["info"] = {
                "import": {k: f"{base}/reports/{proc.id}/{k}.csv" if v else None for k, v in reports.items()}
            }
        return Response(200, body)
