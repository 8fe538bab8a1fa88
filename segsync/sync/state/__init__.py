"""The state store: one SQLite file per project (WAL mode, stdlib ``sqlite3``).

It remembers what makes the next sync cheaper and the history readable, never what makes it
right: plans are made against what is really in the CRM, so deleting the file costs a full
resync, never wrong data. Its parts, one module each:

* :mod:`~segsync.sync.state.base`: the connection, schema and migrations, transactions, and the
  guard that turns SQLite failures into one line of guidance;
* :mod:`~segsync.sync.state.data`: remote ids of fields and lists, the values last written,
  the purchase pulls' writes and their cursors;
* :mod:`~segsync.sync.state.ledger`: the purchase ledger, kept as columns;
* :mod:`~segsync.sync.state.jobs`: job records, checkpoints, rejections, per-record failures;
* :mod:`~segsync.sync.state.locking`: one lock per account, which survives a crash;
* :mod:`~segsync.sync.state.events`: the webhook events ``segsync serve`` queued for a sync.

Everything is kept per platform and CRM account; :meth:`StateStore.account` gives a view of
one account, so the engine never hands ``(platform, account)`` around. It never stores a
secret, and scrubs e-mail addresses out of every reason it keeps.
"""

from __future__ import annotations

from segsync.sync.locks import LockOwner
from segsync.sync.state.base import (
    DEFAULT_STALE_AFTER,
    SCHEMA_VERSION,
    Checkpoint,
    FailureRecord,
    JobRecord,
    LockInfo,
    SystemWallClock,
    WallClock,
    decode_value,
    encode_value,
    scrub,
    store_error,
)
from segsync.sync.state.data import PullState
from segsync.sync.state.events import PendingEvents
from segsync.sync.state.store import AccountLedger, AccountStore, StateStore

__all__ = [
    "DEFAULT_STALE_AFTER",
    "SCHEMA_VERSION",
    "AccountLedger",
    "AccountStore",
    "Checkpoint",
    "FailureRecord",
    "JobRecord",
    "LockInfo",
    "LockOwner",
    "PendingEvents",
    "PullState",
    "StateStore",
    "SystemWallClock",
    "WallClock",
    "decode_value",
    "encode_value",
    "scrub",
    "store_error",
]
