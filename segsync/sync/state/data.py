"""Remote ids, the values last written, and the purchase ledger's writes with their cursors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from segsync.core.models import FieldValue, Purchase
from segsync.sync.state.base import decode_value
from segsync.sync.state.db import Db
from segsync.sync.state.ledger import LedgerStore, chunk_frame


@dataclass(frozen=True)
class PullState:
    """Where a resumable purchase pull stands between jobs: the platform's page token, the
    cursor it started from (None: a full pull), the newest modification seen in its first
    chunk and overall, and whether every purchase so far came in modification order."""

    token: str
    since: dt.datetime | None
    started: dt.datetime | None
    newest: dt.datetime | None
    ordered: bool = True


def _stamp(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _unstamp(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


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
        self, db: Db, platform: str, account: str, name: str, value: dt.datetime | None
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

    # -- resumable pulls ---------------------------------------------------------------------

    def pull_state(self, platform: str, account: str) -> PullState | None:
        rows = self._rows(
            "SELECT * FROM pulls WHERE platform=? AND account=? AND stream='purchases'", (platform, account)
        )
        if not rows:
            return None
        r = rows[0]
        since, started, newest = (_unstamp(r[k]) for k in ("since", "started", "newest"))
        return PullState(r["token"], since, started, newest, bool(r["ordered"]))

    def save_pull_chunk(
        self,
        platform: str,
        account: str,
        purchases: Sequence[Purchase],
        gone: Iterable[str],
        state: PullState,
    ) -> None:
        """One chunk of a resumable pull and where the pull stands, atomically. A full pull's
        chunks are pending: the ledger reads as before until :meth:`finish_pull`."""
        frame = chunk_frame(purchases, gone)
        with self._tx() as db:
            if frame.height:
                self.write_chunk(db, platform, account, frame, base=False, pending=state.since is None)
            db.execute(
                "INSERT OR REPLACE INTO pulls VALUES (?, ?, 'purchases', ?, ?, ?, ?, ?, ?)",
                (
                    platform,
                    account,
                    state.token,
                    _stamp(state.since),
                    _stamp(state.started),
                    _stamp(state.newest),
                    int(state.ordered),
                    self._now(),
                ),
            )

    def finish_pull(
        self,
        platform: str,
        account: str,
        purchases: Sequence[Purchase],
        gone: Iterable[str],
        *,
        full: bool,
        cursor: dt.datetime | None,
    ) -> None:
        """The last chunk of a resumable pull: a full pull's pending chunks replace the ledger
        (as chunks to resolve: pages read twice hold an id twice), the cursor moves, the pull
        state goes; one transaction."""
        frame = chunk_frame(purchases, gone)
        with self._tx() as db:
            if frame.height:
                self.write_chunk(db, platform, account, frame, base=False, pending=full)
            if full:
                self.clear_ledger(db, platform, account)
                db.execute(
                    "UPDATE ledger_chunks SET base=0 WHERE platform=? AND account=? AND base=2",
                    (platform, account),
                )
            db.execute("DELETE FROM pulls WHERE platform=? AND account=?", (platform, account))
            self._write_cursor(db, platform, account, "purchases", cursor)

    def save_pending_chunk(
        self, platform: str, account: str, purchases: Sequence[Purchase], gone: Iterable[str]
    ) -> None:
        """One chunk of a full pull that cannot be resumed, kept pending (the ledger reads as
        before) until :meth:`finish_pull`: the pull holds no more than a chunk in memory."""
        frame = chunk_frame(purchases, gone)
        if frame.height:
            with self._tx() as db:
                self.write_chunk(db, platform, account, frame, base=False, pending=True)

    def discard_pull(self, platform: str, account: str) -> None:
        """Forget an unfinished resumable pull (``sync --full`` starts over)."""
        with self._tx() as db:
            self.clear_ledger(db, platform, account, pending=True)
            db.execute("DELETE FROM pulls WHERE platform=? AND account=?", (platform, account))
