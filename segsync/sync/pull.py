"""A purchase pull, saved to the account's ledger as it runs.

:class:`PurchasePull` saves chunks with a cursor when the platform yields purchases in
modification order: a pull cut short resumes from that cursor. :class:`ResumablePull` is for
platforms that hand out a page token (``resume_tokens``): chunks are saved with the token
whatever the order, so a pull spread over several jobs (a rate budget spent every hour, or
a CRM that ignores the requested sort) always finishes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from segsync.core.models import Purchase, PurchaseRetracted, Rejection
from segsync.sync.state import AccountStore, PullState

#: The purchase cursor is set this far before the newest modification seen: a purchase
#: modified in the same instant as the last one pulled is fetched again, never missed.
CURSOR_OVERLAP = dt.timedelta(seconds=1)


@dataclass
class PurchasePull:
    """Saves a purchase pull to the cache in chunks while it runs (see :data:`PURCHASE_CHUNK`)."""

    state: AccountStore
    since: dt.datetime | None
    incremental: bool
    chunk: int
    pulled: int = 0
    buffer: list[Purchase] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    newest: dt.datetime | None = None
    in_order: bool = True
    first_flush: bool = True

    def add(self, rec: Purchase | PurchaseRetracted | Rejection) -> None:
        if isinstance(rec, Purchase):
            self.pulled += 1
            self.buffer.append(rec)
            stamp = rec.modified_at
            if stamp is None or (self.newest is not None and stamp < self.newest):
                if self.in_order and not self.first_flush:
                    # A cursor saved mid-pull assumed the order; take it back, so a pull cut
                    # short from here restarts where this one started.
                    self.state.set_cursor(self.since)
                self.in_order = False
            elif self.newest is None or stamp > self.newest:
                self.newest = stamp
        elif isinstance(rec, PurchaseRetracted):
            self.gone.append(rec.id)
        elif rec.kind == "purchase":
            self.gone.append(rec.record_id)  # its last good version must not linger in the cache
        if self.incremental and self.in_order and len(self.buffer) >= self.chunk:
            self.flush()

    def cursor(self) -> dt.datetime | None:
        if not self.incremental or self.newest is None:
            return self.since
        moved = self.newest - CURSOR_OVERLAP
        return moved if self.since is None or moved > self.since else self.since

    def interrupted(self) -> None:
        """Keep what came in (a pause mid-pull must not cost the pages already fetched), but
        only when the order makes the cursor safe; else the next pull starts over."""
        if self.incremental and self.in_order and (self.buffer or self.gone):
            self.flush()

    def finish(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Save what was pulled so far. Mid-pull only when the order makes the cursor safe."""
        self.state.save_purchases(
            self.buffer,
            self.gone,
            replace_all=self.first_flush and self.since is None,
            cursor=self.cursor(),
        )
        self.first_flush = False
        self.buffer, self.gone = [], []


@dataclass
class ResumablePull:
    """A purchase pull that saves, with each chunk, the platform's page token to resume from.

    A full pull's chunks stay pending until it ends, then replace the ledger at once. The
    cursor it leaves: when every purchase came in modification order, the newest change seen
    (a purchase changed mid-pull moves to the end and is read again); otherwise no later than
    the newest change its first chunk saw, so whatever changed after the pull began (pages
    already read may have changed, between jobs too) is pulled again next time.
    """

    state: AccountStore
    since: dt.datetime | None
    chunk: int
    token: Callable[[], str | None]
    started: dt.datetime | None = None
    newest: dt.datetime | None = None
    ordered: bool = True
    begun: bool = False
    pulled: int = 0
    buffer: list[Purchase] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    @classmethod
    def resume(
        cls, state: AccountStore, saved: PullState, chunk: int, token: Callable[[], str | None]
    ) -> ResumablePull:
        return cls(state, saved.since, chunk, token, saved.started, saved.newest, saved.ordered, begun=True)

    def add(self, rec: Purchase | PurchaseRetracted | Rejection) -> None:
        if not self.begun and self.token() is not None:
            self.begun, self.started = True, self.newest  # the first page is read: where it began
        if isinstance(rec, Purchase):
            self.pulled += 1
            self.buffer.append(rec)
            stamp = rec.modified_at
            if stamp is None or (self.newest is not None and stamp < self.newest):
                self.ordered = False
            elif self.newest is None or stamp > self.newest:
                self.newest = stamp
        elif isinstance(rec, PurchaseRetracted):
            self.gone.append(rec.id)
        elif rec.kind == "purchase":
            self.gone.append(rec.record_id)
        if len(self.buffer) >= self.chunk:
            self.save()

    def save(self) -> None:
        """Save what came in with the token of the page reached (a page read again after a
        resume is harmless: a purchase id's newest rows replace its older ones)."""
        token = self.token()
        if token is None:
            return  # no page finished yet: nothing to resume from, keep buffering
        self.state.save_pull_chunk(
            self.buffer, self.gone, PullState(token, self.since, self.started, self.newest, self.ordered)
        )
        self.buffer, self.gone = [], []

    def cursor(self) -> dt.datetime | None:
        newest = self.newest
        if not self.ordered and self.started is not None:
            newest = min(self.started, newest or self.started)
        if newest is None:
            return self.since
        moved = newest - CURSOR_OVERLAP
        return moved if self.since is None or moved > self.since else self.since

    def interrupted(self) -> None:
        self.save()

    def finish(self) -> None:
        self.state.finish_pull(self.buffer, self.gone, full=self.since is None, cursor=self.cursor())
        self.buffer, self.gone = [], []


__all__ = ["CURSOR_OVERLAP", "PurchasePull", "ResumablePull"]
