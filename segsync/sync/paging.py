"""Paging strategies: how a pull walks a CRM's pages, and the guards that stop a walk that never ends.

A strategy is a small object kept apart from transport (dlt's paginators): the plugin hands it
``fetch``, one SDK call made through the runner (so retries and the throttle apply per page),
and iterates the pages it yields. Two strategies cover segsync's CRMs:

* :class:`CursorPaging`: each page names the next (HubSpot's ``paging.next.after``);
* :class:`OffsetPaging`: ``offset``/``limit`` pages that re-read the last item already seen,
  so records deleted mid-pull never make it skip others (Brevo); its :class:`OffsetCursor`
  token lets a paused pull resume.

Every strategy has the same loop guards (:class:`PageGuard`). A CRM that repeats a cursor, keeps
serving pages with nothing new, or serves more pages than any account holds would otherwise
keep a sync looping forever; each raises :class:`~segsync.errors.PermanentError` instead (the
same answer would come again). Records vanishing faster than an offset pull can step back
raise :class:`~segsync.errors.TransientError`: the data is churning, and a later run gets through.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from segsync.errors import PermanentError, TransientError

#: More requests than any account's pages (a hundred million records at 100 a page).
DEFAULT_MAX_PAGES = 1_000_000
#: Pages in a row that bring nothing new before a pull is called stuck.
DEFAULT_MAX_STALE_PAGES = 10

Item = Mapping[str, Any]


def after_token(page: Mapping[str, Any]) -> str | None:
    """A page's ``paging.next.after`` (HubSpot's cursor), or None on the last page."""
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None


class PageGuard:
    """The loop guards of one pull; ``vendor`` names the CRM in messages ("HubSpot")."""

    def __init__(
        self,
        platform: str,
        operation: str,
        *,
        vendor: str = "the CRM",
        max_pages: int = DEFAULT_MAX_PAGES,
        max_stale_pages: int = DEFAULT_MAX_STALE_PAGES,
    ) -> None:
        self.platform = platform
        self.operation = operation
        self.vendor = vendor
        self.max_pages = max_pages
        self.max_stale_pages = max_stale_pages
        self.requests = 0
        self.stale = 0
        self._cursors: set[tuple[Hashable, str]] = set()

    def _stop(self, problem: str) -> PermanentError:
        return PermanentError(
            f"{self.vendor} {problem}; stopping instead of looping forever",
            platform=self.platform,
            operation=self.operation,
        )

    def request(self) -> None:
        """Count one page request; past ``max_pages`` the paging is broken, not the account big."""
        self.requests += 1
        if self.requests > self.max_pages:
            raise self._stop(f"kept serving pages past {self.max_pages:,}")

    def cursor(self, token: str, scope: Hashable = None) -> None:
        """A next-page token; one seen before (within ``scope``, e.g. one batch input) loops."""
        key = (scope, token)
        if key in self._cursors:
            raise self._stop("repeated a paging cursor")
        self._cursors.add(key)

    def progress(self, new: bool) -> None:
        """Whether a page that promised more brought anything new."""
        self.stale = 0 if new else self.stale + 1
        if self.stale >= self.max_stale_pages:
            raise self._stop(f"served {self.stale} pages in a row with nothing new")


@dataclass(frozen=True)
class CursorPaging:
    """After-token paging: follow each page's next token (``token``, by default HubSpot's
    ``paging.next.after``) until a page has none.

    ``items`` is the array of records in a page; a page without any that still names a next
    page counts as bringing nothing new.
    """

    platform: str
    operation: str
    vendor: str = "the CRM"
    items: str = "results"
    token: Callable[[Mapping[str, Any]], str | None] = after_token
    max_pages: int = DEFAULT_MAX_PAGES
    max_stale_pages: int = DEFAULT_MAX_STALE_PAGES

    def guard(self) -> PageGuard:
        return PageGuard(
            self.platform,
            self.operation,
            vendor=self.vendor,
            max_pages=self.max_pages,
            max_stale_pages=self.max_stale_pages,
        )

    def pages(self, fetch: Callable[[str | None], Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """Every page: ``fetch(None)`` first, then ``fetch(token)`` with each next token."""
        guard = self.guard()
        after: str | None = None
        while True:
            guard.request()
            page = fetch(after)
            yield page
            after = self.token(page)
            if after is None:
                return
            guard.cursor(after)
            guard.progress(bool(page.get(self.items)))


@dataclass(frozen=True)
class OffsetCursor:
    """Where an offset-paged pull stands: the next offset and the id of the item before it.

    ``token()`` is what a paused pull hands back to resume from (``"offset:last_id"``).
    """

    offset: int = 0
    last_id: str | None = None

    def token(self) -> str:
        return f"{self.offset}:{self.last_id or ''}"

    @classmethod
    def parse(cls, token: str | None) -> OffsetCursor:
        """The cursor of a token; an empty or unreadable one starts from the beginning."""
        if not token:
            return cls()
        offset, _, last = token.partition(":")
        try:
            return cls(max(0, int(offset)), last or None)
        except ValueError:
            return cls()


def _item_id(item: Item) -> str:
    return str(item.get("id"))


@dataclass(frozen=True)
class OffsetPaging:
    """Pages of an offset-paged list in a stable order, each item version yielded once.

    Each request re-reads the last item already seen: if it is not where it was, records
    before it were deleted (or, when sorted by modification, modified) during the pull and
    offsets shifted, so the pull steps back one page instead of skipping records; versions
    already yielded (``version(item)``, the id by default) are filtered out. Stepping back
    more than ``max_rewinds`` times raises TransientError.
    """

    platform: str
    operation: str
    limit: int
    vendor: str = "the CRM"
    version: Callable[[Item], str] | None = None
    max_rewinds: int = 20
    max_pages: int = DEFAULT_MAX_PAGES
    max_stale_pages: int = DEFAULT_MAX_STALE_PAGES

    def pages(
        self, fetch: Callable[[int, int], list[Item]], cursor: OffsetCursor | None = None
    ) -> Iterator[tuple[list[Item], OffsetCursor]]:
        """``fetch(offset, limit)`` returns one page; yields ``(new items, cursor after them)``."""
        guard = PageGuard(
            self.platform,
            self.operation,
            vendor=self.vendor,
            max_pages=self.max_pages,
            max_stale_pages=self.max_stale_pages,
        )
        cur = cursor or OffsetCursor()
        version = self.version or _item_id
        seen: set[str] = set()
        rewinds = backlog = 0
        while True:
            overlap = 1 if cur.offset > 0 and cur.last_id is not None else 0
            start = cur.offset - overlap
            guard.request()
            items = fetch(start, self.limit)
            if overlap and (not items or str(items[0].get("id")) != cur.last_id):
                rewinds += 1
                if rewinds > self.max_rewinds:
                    raise TransientError(
                        "records kept disappearing while paging; run again",
                        platform=self.platform,
                        operation=self.operation,
                    )
                backlog += 1  # the page stepped back over is read again: nothing new is expected
                cur = OffsetCursor(max(0, start - self.limit + 1), None)
                continue
            fresh = [i for i in items[overlap:] if version(i) not in seen]
            seen.update(version(i) for i in fresh)
            last = str(items[-1].get("id")) if items else cur.last_id
            cur = OffsetCursor(start + len(items), last)
            yield fresh, cur
            if len(items) < self.limit:
                return
            if backlog and not fresh:
                backlog -= 1
            else:
                backlog = max(0, backlog - 1)
                guard.progress(bool(fresh))


__all__ = [
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_STALE_PAGES",
    "CursorPaging",
    "OffsetCursor",
    "OffsetPaging",
    "PageGuard",
    "after_token",
]
