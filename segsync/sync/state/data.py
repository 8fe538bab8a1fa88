"""Remote ids, the values last written, and the purchase ledger's writes with their cursors."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence

from segsync.core.models import ContactUpdate, FieldValue, Purchase
from segsync.sync.state.base import decode_value, encode_value
from segsync.sync.state.ledger import LedgerStore, chunk_frame


class DataStore(LedgerStore):
    """What makes the next sync of an account cheaper."""

    # -- remote ids -----------------------------------------------------------------------

    def remote_ids(self, platform: str, account: str, kind: str) -> dict[str, tuple[str, str]]:
        """``{key: (remote id, name)}`` for ``kind`` ``"list"`` or ``"field"``."""
        rows = self._rows(
            "SELECT key, remote_id, name FROM remote_ids WHERE platform=? AND account=? AND kind=?",
            (platform, account, kind),
        )
        return {r["key"]: (r["remote_id"], r["name"]) for r in rows}

    def set_remote_id(
        self, platform: str, account: str, kind: str, key: str, remote_id: str, name: str
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO remote_ids VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, account, kind, key, remote_id, name, self._now()),
            )

    def forget_remote_id(self, platform: str, account: str, kind: str, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM remote_ids WHERE platform=? AND account=? AND kind=? AND key=?",
                (platform, account, kind, key),
            )

    # -- values written -------------------------------------------------------------------

    def record_written(
        self, platform: str, account: str, job_id: int, updates: Iterable[ContactUpdate]
    ) -> None:
        now = self._now()
        rows = [
            (platform, account, u.contact_id, key, encode_value(v), job_id, now)
            for u in updates
            for key, v in u.values.items()
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO written_values VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def written_values(self, platform: str, account: str) -> dict[str, dict[str, FieldValue]]:
        out: dict[str, dict[str, FieldValue]] = {}
        for r in self._rows(
            "SELECT contact_id, field, value FROM written_values WHERE platform=? AND account=?",
            (platform, account),
        ):
            out.setdefault(r["contact_id"], {})[r["field"]] = decode_value(r["value"])
        return out

    # -- purchases ------------------------------------------------------------------------

    def cursor(self, platform: str, account: str, name: str = "purchases") -> dt.datetime | None:
        rows = self._rows(
            "SELECT value FROM cursors WHERE platform=? AND account=? AND name=?", (platform, account, name)
        )
        return dt.datetime.fromisoformat(rows[0]["value"]) if rows else None

    def set_cursor(
        self, platform: str, account: str, value: dt.datetime | None, name: str = "purchases"
    ) -> None:
        """Move a cursor (None removes it: the next pull is a full one)."""
        with self._tx() as db:
            self._write_cursor(db, platform, account, name, value)

    def _write_cursor(
        self, db: sqlite3.Connection, platform: str, account: str, name: str, value: dt.datetime | None
    ) -> None:
        if value is None:
            db.execute(
                "DELETE FROM cursors WHERE platform=? AND account=? AND name=?", (platform, account, name)
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                (platform, account, name, value.isoformat(), self._now()),
            )

    def save_purchases(
        self,
        platform: str,
        account: str,
        purchases: Sequence[Purchase],
        gone: Iterable[str] = (),
        *,
        replace_all: bool,
        cursor: dt.datetime | None,
    ) -> None:
        """Apply one pulled chunk atomically.

        Every purchase id seen replaces all cached rows of that id (a deal's contacts may have
        changed); ``gone`` ids (retracted, or now rejected) are dropped; ``replace_all`` empties
        the cache first (a full pull). ``cursor`` is stored when given; a full pull without one
        clears it, so the next pull is full again.
        """
        frame = chunk_frame(purchases, gone)
        with self._tx() as db:
            if replace_all:
                self.clear_ledger(db, platform, account)
            if frame.height:
                self.write_chunk(db, platform, account, frame, base=replace_all)
            if cursor is not None or replace_all:
                self._write_cursor(db, platform, account, "purchases", cursor)
