"""What every part of the Brevo platform shares for one account: calls, pages, contact look-ups.

:class:`~segsync_brevo.platform.BrevoPlatform` composes parts that each own one concern
(:mod:`.attributes`, :mod:`.lists`, :mod:`.pulls`, :mod:`.writes`); they all reach Brevo
through one :class:`BrevoSession`, which also keeps what pulls learnt that writes need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from segsync import CallRunner, PermanentError
from segsync_brevo.client import NO_RETRY, BrevoClient, PageCursor, Reply, offset_pages
from segsync_brevo.config import CONTACTS, BrevoSettings

Page = tuple[list[Mapping[str, Any]], PageCursor]


def flat(pages: Iterator[Page]) -> Iterator[Mapping[str, Any]]:
    """The items of offset pages, one after another."""
    for items, _ in pages:
        yield from items


def not_found(exc: PermanentError) -> bool:
    return exc.status == 404


class BrevoSession:
    """The client of one account, its settings, and the emails of the contacts pulled."""

    def __init__(self, settings: BrevoSettings, client: BrevoClient, runner: CallRunner) -> None:
        self.settings = settings
        self.client = client
        self.sdk = client.sdk
        self.runner = runner
        #: contact id -> email, from pulls: imports find contacts by email
        self.emails: dict[str, str | None] = {}

    def call(
        self, operation: str, fn: Callable[[], Any], *, bucket: str = CONTACTS, write: bool = False
    ) -> Reply:
        return self.client.call(operation, fn, bucket=bucket, write=write)

    def paged(
        self,
        operation: str,
        request: Callable[[int, int], Any],
        key: str,
        *,
        limit: int,
        bucket: str = CONTACTS,
        resume: str | None = None,
        version: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> Iterator[Page]:
        """Offset pages of one list endpoint; ``request(offset, limit)`` is the raw SDK call and
        ``key`` the array in its answer."""

        def fetch(offset: int, size: int) -> list[Mapping[str, Any]]:
            body = self.call(operation, lambda: request(offset, size), bucket=bucket).body
            return list((body or {}).get(key) or ())

        return offset_pages(
            fetch, limit=limit, cursor=PageCursor.parse(resume), version=version, operation=operation
        )

    def contact_pages(self, *, resume: str | None = None, **filters: Any) -> Iterator[Page]:
        """``GET /contacts`` oldest first, 1000 a page, with filters (modified_since, list_ids, ...)."""
        return self.paged(
            "contacts.list",
            lambda offset, limit: self.sdk.contacts.with_raw_response.get_contacts(
                limit=limit, offset=offset, sort="asc", request_options=NO_RETRY, **filters
            ),
            "contacts",
            limit=self.settings.contacts_page,
            resume=resume,
        )

    def contact(self, contact_id: str) -> Mapping[str, Any] | None:
        """One contact by id (``GET /contacts/{id}``), or None if it no longer exists."""
        try:
            body: Mapping[str, Any] = self.call(
                "contacts.get",
                lambda: self.sdk.contacts.with_raw_response.get_contact_info(
                    contact_id, identifier_type="contact_id", request_options=NO_RETRY
                ),
            ).body
        except PermanentError as exc:
            if not_found(exc):
                return None
            raise
        return body
