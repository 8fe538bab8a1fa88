"""Field writes to Brevo: one PUT per contact for small batches, else imports verified after.

Writes go through ``POST /contacts/import`` (``/contacts/batch`` is retired). Brevo ignores
attributes it does not know and values of the wrong type, so every attribute is checked
before an import is sent (:meth:`~segsync_brevo.attributes.Attributes.shapes`), and every
import is followed to completion and read back: only contacts whose values Brevo really
stored are reported ok. An import must be followed by status polls from the hourly budget.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from brevo.contacts import ImportContactsRequestJsonBodyItem

from segsync import ContactUpdate, FieldValue, PermanentError, RecordFailure, WriteResult
from segsync_brevo import mapping
from segsync_brevo.attributes import Attributes, Shape
from segsync_brevo.client import NO_RETRY, parse_http_date
from segsync_brevo.config import OTHER
from segsync_brevo.lists import Lists
from segsync_brevo.session import BrevoSession, flat, not_found

#: An update with the attribute values it sends, encoded for Brevo.
Encoded = tuple[ContactUpdate, dict[str, Any]]


class Writes:
    """Managed field values written to contacts, and the proof that Brevo stored them."""

    def __init__(self, session: BrevoSession, attributes: Attributes, lists: Lists) -> None:
        self.session = session
        self.attributes = attributes
        self.lists = lists

    def write(self, updates: Sequence[ContactUpdate]) -> WriteResult:
        """Write managed values: one ``PUT /contacts/{id}`` each for small batches, else imports.

        A PUT costs one call from the per-second contacts budget and nothing else; an import
        also costs its status polls from the scarce hourly budget, so it only pays off for
        many contacts (``put_max``). Contacts without an email cannot be imported (imports find
        contacts by email) and always go one by one.
        """
        shapes = self.attributes.shapes({k for u in updates for k in u.values})
        failed: list[RecordFailure] = []
        encoded: list[Encoded] = []
        for update in updates:
            try:
                values = {
                    shapes[k][0]: mapping.encode_value(shapes[k][1], v, shapes[k][2])
                    for k, v in update.values.items()
                }
            except ValueError as exc:
                failed.append(RecordFailure(record_id=update.contact_id, reason=str(exc)))
                continue
            encoded.append((update, values))
        one_by_one, imported = self._route(encoded, failed)
        ok: list[str] = []
        for result in (self._put_each(one_by_one, shapes), self._import_all(imported, shapes)):
            ok += result.ok
            failed += result.failed
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _route(
        self, encoded: Sequence[Encoded], failed: list[RecordFailure]
    ) -> tuple[list[Encoded], list[Encoded]]:
        """(one PUT each, imported), with the email each import item needs filled in.

        An import finds contacts by email, so it reaches one contact per email: when updates
        share an email (case aside; Brevo allows no such pair, so segsync's copy of one is out
        of date), all of them go by id instead, or each but one would be counted without its
        values ever being stored.
        """
        if len(encoded) <= self.session.settings.put_max:
            return list(encoded), []
        one_by_one: list[Encoded] = []
        imported: list[Encoded] = []
        emails = self._emails_of([u.contact_id for u, _ in encoded if not u.email])
        for update, values in encoded:
            email = update.email or emails.get(update.contact_id)
            if email:
                imported.append((update.model_copy(update={"email": email}), values))
            elif update.contact_id in emails:
                one_by_one.append((update, values))
            else:
                failed.append(RecordFailure(record_id=update.contact_id, reason="contact no longer exists"))
        seen = Counter(str(u.email).casefold() for u, _ in imported)
        one_by_one += [item for item in imported if seen[str(item[0].email).casefold()] > 1]
        return one_by_one, [item for item in imported if seen[str(item[0].email).casefold()] == 1]

    def _put_each(
        self,
        items: Sequence[Encoded],
        shapes: Mapping[str, Shape],
    ) -> WriteResult:
        """One ``PUT /contacts/{id}`` per contact: by id, so a deleted contact is a 404, never
        re-created. Clearing by empty string is not documented, so clears are read back."""
        ok: list[str] = []
        failed: list[RecordFailure] = []
        for update, values in items:
            cid = update.contact_id
            if not cid.isdigit():
                failed.append(RecordFailure(record_id=cid, reason="not a Brevo contact id"))
                continue
            try:
                self._put_contact(cid, values)
            except PermanentError as exc:
                if not not_found(exc):
                    raise
                failed.append(RecordFailure(record_id=cid, reason="contact no longer exists in Brevo"))
                continue
            cleared = {k: None for k, v in update.values.items() if v is None}
            if cleared:
                stored = (self.session.contact(cid) or {}).get("attributes") or {}
                kept = [
                    shapes[k][0]
                    for k in cleared
                    if not self._stored(None, stored.get(shapes[k][0]), shapes[k])
                ]
                if kept:
                    failed.append(
                        RecordFailure(record_id=cid, reason=f"Brevo kept {', '.join(kept)} when cleared")
                    )
                    continue
            ok.append(cid)
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _put_contact(self, contact_id: str, values: Mapping[str, Any]) -> None:
        self.session.call(
            "contacts.update",
            lambda: self.session.sdk.contacts.with_raw_response.update_contact(
                contact_id, identifier_type="contact_id", attributes=dict(values), request_options=NO_RETRY
            ),
            write=True,
        )

    def _import_all(self, items: Sequence[Encoded], shapes: Mapping[str, Shape]) -> WriteResult:
        """Imports, each followed to completion, then one read-back of what Brevo stored."""
        if not items:
            return WriteResult()
        # An import must be followed by status polls from the hourly budget: when that budget
        # is already spent, pause before sending it rather than leave it unchecked.
        self.session.runner.wait_for_budget(OTHER, "processes.get")
        started, full, unfinished = self._send_imports(self._batches(items))
        sent = [u for u, _ in items]
        outcome = self._verify(sent, shapes, started, full=full)
        ok: list[str] = []
        failed: list[RecordFailure] = []
        for update in sent:
            problem = unfinished.get(update.contact_id) or outcome.get(update.contact_id)
            if problem:
                failed.append(RecordFailure(record_id=update.contact_id, reason=problem))
            else:
                ok.append(update.contact_id)
        return WriteResult(ok=tuple(ok), failed=tuple(failed))

    def _batches(self, items: Sequence[Encoded]) -> list[tuple[bool, list[Encoded]]]:
        """(erase, items) per import: values to set, then values to clear.

        Clears go in separate imports with ``emptyContactsAttributes`` where every item clears
        the same attributes (an import is a table: an attribute one item has is empty, hence
        erased, in the items without it).
        """
        setting: list[Encoded] = []
        clearing: dict[frozenset[str], list[Encoded]] = {}
        for update, values in items:
            kept = {n: v for n, v in values.items() if v != ""}
            cleared = {n: v for n, v in values.items() if v == ""}
            if kept:
                setting.append((update, kept))
            if cleared:
                clearing.setdefault(frozenset(cleared), []).append((update, cleared))
        batches = [(False, chunk) for chunk in self._chunks(setting)]
        batches += [(True, chunk) for group in clearing.values() for chunk in self._chunks(group)]
        return batches

    def _send_imports(
        self, batches: Sequence[tuple[bool, list[Encoded]]]
    ) -> tuple[float, bool, dict[str, str]]:
        """Send each import and follow it: (Brevo's clock at the first, read all back?, unfinished)."""
        unfinished: dict[str, str] = {}
        started: float | None = None
        settings = self.session.settings
        full = settings.import_readback == "always"
        for erase, chunk in batches:
            server_time, process = self._import(chunk, erase=erase)
            started = server_time if started is None else min(started, server_time)
            done, problems = self._await_process(process)
            full = full or problems
            if not done:
                for update, _ in chunk:
                    unfinished[update.contact_id] = (
                        f"import {process} did not complete within {settings.import_timeout:.0f}s; "
                        "it is written again on the next sync"
                    )
        assert started is not None
        return started, full, unfinished

    def _emails_of(self, contact_ids: Sequence[str]) -> dict[str, str | None]:
        """Emails of contacts an update names by id only: from the last pull, else looked up
        20 at a time (``GET /contacts?ids=``), or, when that takes more calls than reading
        every contact 1000 a page would, from one listing of all (sized with one ``limit=1``
        call); a contact that no longer exists maps to None."""
        out = {c: self.session.emails[c] for c in contact_ids if c in self.session.emails}
        unknown = [c for c in contact_ids if c not in out and c.isdigit()]
        by_id = math.ceil(len(unknown) / 20)
        # sizing the account costs a call: only worth it when lookups would take three or more
        if by_id > 2 and 1 + math.ceil(self._account_size() / self.session.settings.contacts_page) < by_id:
            for raw in flat(self.session.contact_pages()):
                self.session.emails[str(raw["id"])] = raw.get("email") or None
            return {**out, **{c: self.session.emails.get(c) for c in unknown}}
        for start in range(0, len(unknown), 20):
            for raw in flat(self.session.contact_pages(ids=[int(c) for c in unknown[start : start + 20]])):
                out[str(raw["id"])] = self.session.emails[str(raw["id"])] = raw.get("email") or None
        return out

    def _account_size(self) -> int:
        """How many contacts the account holds (the ``count`` of a one-contact page)."""
        body = self.session.call(
            "contacts.count",
            lambda: self.session.sdk.contacts.with_raw_response.get_contacts(
                limit=1, offset=0, request_options=NO_RETRY
            ),
        ).body
        return int((body or {}).get("count") or 0)

    def _chunks(self, items: Sequence[Encoded]) -> Iterator[list[Encoded]]:
        """Split so each import body stays under ``import_max_bytes``."""
        budget = self.session.settings.import_max_bytes - 1024  # the envelope around jsonBody
        chunk: list[Encoded] = []
        size = 0
        for update, values in items:
            item_size = (
                len(json.dumps({"email": update.email, "attributes": values}, ensure_ascii=False).encode())
                + 1
            )
            if chunk and size + item_size > budget:
                yield chunk
                chunk, size = [], 0
            chunk.append((update, values))
            size += item_size
        if chunk:
            yield chunk

    def _import(self, chunk: Sequence[Encoded], *, erase: bool) -> tuple[float, int]:
        """Send one import; return (Brevo's clock when it was accepted, process id)."""
        list_id = self.lists.import_list()
        body = [ImportContactsRequestJsonBodyItem(email=u.email, attributes=values) for u, values in chunk]
        reply = self.session.call(
            "contacts.import",
            lambda: self.session.sdk.contacts.with_raw_response.import_contacts(
                json_body=body,
                list_ids=[list_id],
                update_existing_contacts=True,
                empty_contacts_attributes=erase,
                disable_notification=True,
                request_options=NO_RETRY,
            ),
            write=True,
        )
        server_time = parse_http_date(reply.server_time)
        return (server_time if server_time is not None else time.time()), int(reply.body["processId"])

    def _await_process(self, process: int) -> tuple[bool, bool]:
        """Poll the import until it completes, backing off (each poll spends the hourly budget).

        Returns (completed, problems): Brevo's report of a completed import names files of
        invalid or duplicate rows; it does not say which, so problems call for a read-back.
        """
        delay = self.session.settings.import_poll_initial
        waited = 0.0
        while True:
            self.session.runner.clock.sleep(delay)
            waited += delay
            body = self.session.call(
                "processes.get",
                lambda: self.session.sdk.process.with_raw_response.get_process(
                    process, request_options=NO_RETRY
                ),
                bucket=OTHER,
            ).body
            status = (body or {}).get("status")
            if status == "completed":
                report = ((body or {}).get("info") or {}).get("import") or {}
                return True, any(report.values())
            if status in ("failed", "cancelled") or waited >= self.session.settings.import_timeout:
                return False, True
            delay = min(delay * 2, self.session.settings.import_poll_max)

    def _verify(
        self,
        updates: Sequence[ContactUpdate],
        shapes: Mapping[str, Shape],
        started: float,
        *,
        full: bool,
    ) -> dict[str, str]:
        """A failure reason per imported contact that did not take.

        Always: contacts the imports *created* (Brevo creates one for an email it does not
        know: the contact pulled was deleted or changed its email since) are found and deleted
        again. With ``full`` (Brevo reported problems, or ``import_readback = "always"``), or
        when such a contact was found (emails moved since the pull: one may now be another
        contact's, which the import then wrote instead): every written value is read back.
        """
        list_id = self.lists.import_list()
        since = mapping.format_since(
            dt.datetime.fromtimestamp(started - self.session.settings.readback_skew, tz=dt.UTC)
        )
        by_id = {u.contact_id: u for u in updates}
        by_email = {str(u.email).casefold(): u for u in updates}
        reasons: dict[str, str] = {}
        for raw in list(self._import_list_contacts(list_id, created_since=since)):
            owner = by_email.get(str(raw.get("email") or "").casefold())
            if owner is not None and str(raw.get("id")) not in by_id:
                # Undo the creation rather than resurrect a contact deleted since the pull.
                self._delete_contact(str(raw["id"]))
                reasons[owner.contact_id] = (
                    f"Brevo has no contact {owner.contact_id} with this email any more (deleted or changed "
                    f"since the pull); the import created contact {raw['id']} for it, which segsync deleted "
                    "again"
                )
        if not (full or reasons):
            return reasons
        stored: dict[str, Mapping[str, Any]] = {}
        for raw in self._import_list_contacts(list_id, modified_since=since):
            rid = str(raw.get("id"))
            owner = by_email.get(str(raw.get("email") or "").casefold())
            if owner is not None and owner.contact_id != rid:
                reasons.setdefault(
                    owner.contact_id,
                    f"its email moved to contact {rid} since the pull, so the import wrote contact {rid} "
                    f"instead; contact {owner.contact_id} is written on the next sync",
                )
            if rid in by_id:
                stored[rid] = raw.get("attributes") or {}
        for update in updates:
            if update.contact_id not in reasons:
                problem = self._readback(update, stored.get(update.contact_id), shapes)
                if problem:
                    reasons[update.contact_id] = problem
        return reasons

    def _readback(
        self,
        update: ContactUpdate,
        attributes: Mapping[str, Any] | None,
        shapes: Mapping[str, Shape],
    ) -> str | None:
        """Why ``update`` did not take, from the attributes read back (None: not seen modified)."""
        if attributes is None:
            # Not seen as modified (clock skew, or nothing changed): look at it directly.
            contact = self.session.contact(update.contact_id)
            if contact is None:
                return "contact no longer exists in Brevo"
            attributes = contact.get("attributes") or {}
        wrong = [
            shapes[key][0]
            for key, value in update.values.items()
            if not self._stored(value, attributes.get(shapes[key][0]), shapes[key])
        ]
        return f"Brevo did not store {', '.join(wrong)} (the import ignored the value)" if wrong else None

    def _import_list_contacts(
        self, list_id: int, *, created_since: str | None = None, modified_since: str | None = None
    ) -> Iterator[Mapping[str, Any]]:
        return flat(
            self.session.contact_pages(
                list_ids=[list_id], created_since=created_since, modified_since=modified_since
            )
        )

    def _delete_contact(self, contact_id: str) -> None:
        self.session.call(
            "contacts.delete",
            lambda: self.session.sdk.contacts.with_raw_response.delete_contact(
                contact_id, identifier_type="contact_id", request_options=NO_RETRY
            ),
            write=True,
        )

    @staticmethod
    def _stored(value: FieldValue, raw: Any, shape: Shape) -> bool:
        _, kind, codes = shape
        found = mapping.decode_value(kind, raw, {code: option for option, code in codes.items()})
        if value is None:
            return found is None
        return found is not None and mapping.same_value(value, found)
