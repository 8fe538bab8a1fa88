"""The webhook queue: events ``segsync serve`` acknowledged and the syncs that settle them.

An event is committed here before its delivery is answered 200, so an acknowledged event
survives a killed receiver; the CRM redelivers any it was not told arrived. Each event gets a
sequence number. A sync settles the events that were queued when it started (``upto``), so
one that arrives during a sync waits for the next. Replicas sharing the store share the queue:
whichever runs the next sync settles what every replica queued, and the account lock keeps
that to one sync at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from segsync.sync.state.base import StoreBase
from segsync.sync.webhooks import WebhookEvent

#: Settled events are kept this long to recognise a late redelivery, then pruned.
KEEP_SETTLED = dt.timedelta(days=7)


@dataclass(frozen=True)
class PendingEvents:
    """What waits for a sync: how many events, the last one's sequence number, the oldest's
    arrival (None when none waits)."""

    count: int
    last_seq: int
    oldest: dt.datetime | None


class EventStore(StoreBase):
    """Webhook events per platform, queued once each (by their key), settled by syncs."""

    def queue_events(self, platform: str, events: Sequence[WebhookEvent], received_at: dt.datetime) -> int:
        """Queue the events not seen before, in one transaction; return how many were new."""
        at = received_at.isoformat()
        rows = [
            (platform, e.key, e.kind, e.object_id, at, e.occurred_at.isoformat() if e.occurred_at else None)
            for e in events
        ]
        sql = (
            "INSERT OR IGNORE INTO webhook_events "
            "(platform, event_key, kind, object_id, received_at, occurred_at) VALUES (?, ?, ?, ?, ?, ?)"
        )
        with self._tx() as db:
            return sum(db.execute(sql, row).rowcount for row in rows)

    def pending_events(self, platform: str) -> PendingEvents:
        row = self._rows(
            "SELECT COUNT(*) AS n, COALESCE(MAX(seq), 0) AS last, MIN(received_at) AS oldest "
            "FROM webhook_events WHERE platform=? AND settled_at IS NULL",
            (platform,),
        )[0]
        oldest = dt.datetime.fromisoformat(row["oldest"]) if row["oldest"] else None
        return PendingEvents(int(row["n"]), int(row["last"]), oldest)

    def settle_events(self, platform: str, upto: int, at: dt.datetime) -> list[float]:
        """Mark the events queued up to sequence ``upto`` done by a sync that finished ``at``;
        return each one's lag in seconds, from when it happened (or arrived) to ``at``."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT COALESCE(occurred_at, received_at) FROM webhook_events "
                "WHERE platform=? AND settled_at IS NULL AND seq<=?",
                (platform, upto),
            ).fetchall()
            db.execute(
                "UPDATE webhook_events SET settled_at=? WHERE platform=? AND settled_at IS NULL AND seq<=?",
                (at.isoformat(), platform, upto),
            )
            db.execute(
                "DELETE FROM webhook_events WHERE settled_at IS NOT NULL AND settled_at<?",
                ((at - KEEP_SETTLED).isoformat(),),
            )
        return [max(0.0, (at - dt.datetime.fromisoformat(r[0])).total_seconds()) for r in rows]


__all__ = ["KEEP_SETTLED", "EventStore", "PendingEvents"]
