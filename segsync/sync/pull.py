"""A purchase pull, saved to the account's cache as it runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from segsync.core.models import Purchase, PurchaseRetracted, Rejection
from segsync.sync.state import AccountStore

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


__all__ = ["CURSOR_OVERLAP", "PurchasePull"]
