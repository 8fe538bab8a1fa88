"""The purchase ledger: one row per (deal/order id, contact id), kept as columns.

A pull saves what it read as a *chunk* (in the same transaction as its cursor): every
purchase id in a chunk replaces that id's rows in older chunks, and a retracted id is a
tombstone row (status ``retracted``, no contact). Reading resolves the chunks, newest first;
:meth:`LedgerStore.compact_ledger` rewrites them as *base* chunks of resolved rows, which a
read takes as they are. Each column of a chunk is its own Arrow IPC blob, so scoring reads
only the contact, cents, day and currency columns, never the ids, amounts' text or timestamps.

Amounts are kept twice: in integer cents (what scoring sums) and as the exact text the CRM
sent (what a rejection quotes and what :meth:`~LedgerStore.purchases` gives back). A row
whose amount has no cents (not finite, or beyond the core's range) has null cents.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

import numpy as np
import polars as pl

from segsync.core.columns.ledger import LedgerRows, dense_codes
from segsync.core.models import Purchase
from segsync.core.record_checks import MAX_AMOUNT, to_cents
from segsync.sync.state.base import StoreBase
from segsync.sync.state.db import Db

#: Row status: a won deal or order, a refund (negative amount), a retracted purchase id.
STATUS = pl.Enum(["won", "refunded", "retracted"])
_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "purchase": pl.String,
    "contact": pl.String,
    "contact_num": pl.Int64,
    "amount": pl.String,
    "cents": pl.Int64,
    "day": pl.Int32,
    "currency": pl.String,
    "closed_at": pl.String,
    "modified_at": pl.String,
    "status": STATUS,
}
#: The rows scoring counts: not retracted, with an amount in cents (the others are judged alone).
_COUNTED = (pl.col("status") != "retracted") & pl.col("cents").is_not_null()
#: What a scratch copy of an account's ledger takes (table, extra condition).
_COPIED = (
    ("ledger_chunks", ""),
    ("ledger_columns", ""),
    ("pulls", ""),
    ("cursors", " AND name LIKE 'purchases%'"),
)
#: The ``base`` of a pending chunk (0: a pull's delta, 1: base).
PENDING = 2
#: Compact once this many chunks were written since the last compaction ...
COMPACT_CHUNKS = 16
#: ... or when they hold this share of the base rows.
COMPACT_SHARE = 0.05
#: Rows per base chunk: keeps every blob far below SQLite's 1 GB limit.
BASE_ROWS = 2_000_000


def chunk_frame(purchases: Sequence[Purchase], gone: Iterable[str] = ()) -> pl.DataFrame:
    """One pull chunk as ledger rows: purchases (the last copy of a repeated (id, contact)
    wins), then a tombstone for every ``gone`` id not also among them."""
    seen = {p.id for p in purchases}
    tombs = sorted({g for g in gone if g not in seen})
    cents = [_cents(p.amount) for p in purchases]
    frame = pl.DataFrame(
        {
            "purchase": [p.id for p in purchases] + tombs,
            "contact": [p.contact_id for p in purchases] + [None] * len(tombs),
            "contact_num": [_number(p.contact_id) for p in purchases] + [None] * len(tombs),
            "amount": [str(p.amount) for p in purchases] + [None] * len(tombs),
            "cents": cents + [None] * len(tombs),
            "day": [p.closed_at.toordinal() for p in purchases] + [None] * len(tombs),
            "currency": [p.currency for p in purchases] + [None] * len(tombs),
            "closed_at": [p.closed_at.isoformat() for p in purchases] + [None] * len(tombs),
            "modified_at": [p.modified_at.isoformat() if p.modified_at else None for p in purchases]
            + [None] * len(tombs),
            "status": [_status(p.amount) for p in purchases] + ["retracted"] * len(tombs),
        },
        schema=_SCHEMA,
    )
    return frame.unique(["purchase", "contact"], keep="last", maintain_order=True)


def _number(contact_id: str) -> int | None:
    """A contact id that is a canonical decimal integer, as one (CRM ids are): the read
    factorises those by a count; "007" is not one, so it never meets "7"."""
    plain = contact_id.isascii() and contact_id.isdigit() and len(contact_id) < 19
    if plain and (contact_id == "0" or contact_id[0] != "0"):
        return int(contact_id)
    return None


def _purchase(
    pid: str, contact: str, amount: str, currency: str | None, closed: str, modified: str | None
) -> Purchase:
    """A stored row as a Purchase. Not validated again: it was one when saved (and an absurd
    amount a plugin let through must reach the core's checks, not fail the read)."""
    return Purchase.model_construct(
        id=pid,
        contact_id=contact,
        amount=Decimal(amount),
        currency=currency,
        closed_at=dt.datetime.fromisoformat(closed),
        modified_at=dt.datetime.fromisoformat(modified) if modified else None,
    )


def _cents(amount: Decimal) -> int | None:
    return to_cents(amount) if amount.is_finite() and -MAX_AMOUNT <= amount <= MAX_AMOUNT else None


def _status(amount: Decimal) -> str:
    return "refunded" if amount.is_finite() and amount < 0 else "won"


def _blob(series: pl.Series) -> bytes:
    buf = io.BytesIO()
    series.to_frame().write_ipc(buf, compression="lz4")
    return buf.getvalue()


def _series(blob: bytes) -> pl.Series:
    return pl.read_ipc(io.BytesIO(blob)).to_series()


class LedgerStore(StoreBase):
    """The purchase ledger of each account (see the module's docstring)."""

    def write_chunk(
        self,
        db: Db,
        platform: str,
        account: str,
        frame: pl.DataFrame,
        *,
        base: bool,
        pending: bool = False,
    ) -> None:
        """Append one chunk inside the caller's transaction (``pending``: part of a full pull
        still running, which replaces the ledger when it ends and is not read before)."""
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM ledger_chunks WHERE platform=? AND account=?",
            (platform, account),
        ).fetchone()
        seq = int(row[0]) + 1
        db.execute(
            "INSERT INTO ledger_chunks VALUES (?, ?, ?, ?, ?, ?)",
            (platform, account, seq, PENDING if pending else int(base), frame.height, self._now()),
        )
        db.executemany(
            "INSERT INTO ledger_columns VALUES (?, ?, ?, ?, ?)",
            [(platform, account, seq, name, _blob(frame[name])) for name in frame.columns],
        )

    def _upgrade(self, db: Db, version: int) -> None:
        super()._upgrade(db, version)
        if version >= 3 or not db.execute("SELECT 1 FROM sqlite_master WHERE name='purchases'").fetchone():
            return
        # schema 2 kept purchases as text rows: each account's become its base chunk
        cur = db.execute("SELECT * FROM purchases ORDER BY platform, account, purchase_id, contact_id")
        names = [d[0] for d in cur.description]
        accounts: dict[tuple[str, str], list[Purchase]] = {}
        for raw in cur.fetchall():
            r = dict(zip(names, raw, strict=True))
            accounts.setdefault((r["platform"], r["account"]), []).append(
                _purchase(
                    r["purchase_id"],
                    r["contact_id"],
                    r["amount"],
                    r["currency"],
                    r["closed_at"],
                    r["modified_at"],
                )
            )
        for (platform, account), purchases in accounts.items():
            self.write_chunk(db, platform, account, chunk_frame(purchases), base=True)
        db.execute("DROP TABLE purchases")

    def copy_ledger(self, source: StoreBase, platform: str, account: str) -> None:
        """Copy one account's ledger, purchase cursor and unfinished pull from the store
        ``source`` (either backend) into this (scratch) store: ``segsync plan`` pulls into the
        copy, so a dry run never writes the ledger a running sync owns."""
        copied = [
            (
                table,
                source._rows(
                    f"SELECT * FROM {table} WHERE platform=? AND account=?{where}", (platform, account)
                ),
            )
            for table, where in _COPIED
        ]
        with self._tx() as db:
            for table, rows in copied:
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", [tuple(r.values()) for r in rows])

    def clear_ledger(self, db: Db, platform: str, account: str, *, pending: bool = False) -> None:
        """Drop the ledger's chunks (``pending``: those of an unfinished full pull instead)."""
        which = "base = 2" if pending else "base < 2"
        db.execute(
            "DELETE FROM ledger_columns WHERE platform=? AND account=? AND seq IN (SELECT seq FROM "  # noqa: S608
            f"ledger_chunks WHERE platform=? AND account=? AND {which})",
            (platform, account, platform, account),
        )
        db.execute(
            f"DELETE FROM ledger_chunks WHERE platform=? AND account=? AND {which}", (platform, account)
        )  # noqa: S608

    def ledger_frame(self, platform: str, account: str, columns: Sequence[str]) -> pl.DataFrame:
        """The resolved ledger (tombstones included), ``columns`` only; row order is not defined."""
        chunks = self._rows(
            "SELECT seq, base FROM ledger_chunks WHERE platform=? AND account=? AND base < 2 ORDER BY seq",
            (platform, account),
        )
        if not chunks:
            return pl.DataFrame(schema={c: _SCHEMA[c] for c in columns})
        delta = [c["seq"] for c in chunks if not c["base"]]
        names = list(columns) if not delta else list(dict.fromkeys(["purchase", *columns]))
        parts = []
        for c in chunks:
            part = self._chunk(platform, account, c["seq"], names)
            # base chunks are one generation (written together): a deal may straddle two
            seq = 0 if c["base"] else c["seq"]
            parts.append(part.with_columns(pl.lit(seq, pl.Int64).alias("_seq")) if delta else part)
        frame = pl.concat(parts, how="vertical", rechunk=False) if len(parts) > 1 else parts[0]
        if delta:  # the newest chunk that names a purchase id holds all of that id's rows
            newest = pl.col("_seq").max().over("purchase")
            frame = frame.filter(pl.col("_seq") == newest).select(columns)
        return frame

    def _chunk(self, platform: str, account: str, seq: int, names: Sequence[str]) -> pl.DataFrame:
        marks = ",".join("?" * len(names))
        rows = self._rows(
            f"SELECT name, data FROM ledger_columns WHERE platform=? AND account=? AND seq=? "  # noqa: S608
            f"AND name IN ({marks})",
            (platform, account, seq, *names),
        )
        got = {r["name"]: _series(r["data"]) for r in rows}
        return pl.DataFrame([got[n] for n in names])

    def ledger_rows(self, platform: str, account: str) -> LedgerRows:
        """The counted rows as columns: what scoring reads."""
        frame = self.ledger_frame(platform, account, ["status", "contact_num", "cents", "day", "currency"])
        frame = frame.filter(pl.col("status") != "retracted")
        odd_rows = frame["cents"].is_null()
        odd: list[Purchase] = []
        if odd_rows.any():
            frame = frame.filter(~odd_rows)
            odd = self._purchases(platform, account, odd_only=True)
        if frame["contact_num"].null_count() == 0:
            uniq, codes = dense_codes(frame["contact_num"].to_numpy())
            contact_ids: Sequence[str] = pl.Series(uniq).cast(pl.String).to_list()
        else:
            contact_ids, codes = self._contact_codes(platform, account)
        currency = frame["currency"]
        cur_codes, currencies = np.full(frame.height, -1, np.int16), ()
        if currency.null_count() < frame.height:
            names = currency.drop_nulls().unique().sort()
            lookup = pl.DataFrame(
                {"currency": names, "_code": pl.int_range(len(names), dtype=pl.Int16, eager=True)}
            )
            joined = currency.to_frame().join(lookup, on="currency", how="left", maintain_order="left")
            cur_codes = joined["_code"].fill_null(-1).to_numpy()
            currencies = tuple(names.to_list())
        return LedgerRows(
            contact=codes.astype(np.int32, copy=False),
            contact_ids=contact_ids,
            cents=frame["cents"].to_numpy(),
            day=frame["day"].to_numpy().astype(np.int32, copy=False),
            currency=cur_codes,
            currencies=currencies,
            label=_Labels(self, platform, account, frame.height),
            odd=odd,
        )

    def _contact_codes(self, platform: str, account: str) -> tuple[list[str], np.ndarray]:
        """Distinct contact ids of the counted rows and each row's index, by grouping the text
        (some id is not a plain integer)."""
        frame = self.ledger_frame(platform, account, ["status", "contact", "cents"]).filter(_COUNTED)
        groups = frame.with_row_index("_row").group_by("contact").agg(pl.col("_row"))
        codes = np.empty(frame.height, np.int64)
        rows = groups["_row"].explode().to_numpy()
        codes[rows] = np.repeat(np.arange(len(groups)), groups["_row"].list.len().to_numpy())
        return groups["contact"].to_list(), codes

    def purchases(self, platform: str, account: str) -> list[Purchase]:
        """The counted rows as objects, by (purchase id, contact id): the object path's input."""
        return self._purchases(platform, account, odd_only=False)

    def _purchases(self, platform: str, account: str, *, odd_only: bool) -> list[Purchase]:
        """The live rows as objects, by (purchase, contact); ``odd_only``: those without cents."""
        names = ["purchase", "contact", "amount", "currency", "closed_at", "modified_at"]
        frame = self.ledger_frame(platform, account, [*names, "cents"] if odd_only else names)
        which = pl.col("contact").is_not_null()
        if odd_only:
            which &= pl.col("cents").is_null()
        frame = frame.filter(which).sort("purchase", "contact")
        return [
            _purchase(
                r["purchase"], r["contact"], r["amount"], r["currency"], r["closed_at"], r["modified_at"]
            )
            for r in frame.iter_rows(named=True)
        ]

    def ledger_counts(self, platform: str, account: str) -> dict[str, int]:
        """Rows by status (``won``, ``refunded``, ``retracted``) and chunks kept."""
        frame = self.ledger_frame(platform, account, ["status"])
        counts = {s: 0 for s in STATUS.categories}
        for status, n in frame["status"].value_counts().iter_rows():
            counts[status] = n
        chunks = self._rows(
            "SELECT SUM(CASE WHEN base < 2 THEN 1 ELSE 0 END) AS n,"
            " SUM(CASE WHEN base = 2 THEN 1 ELSE 0 END) AS pending FROM ledger_chunks "
            "WHERE platform=? AND account=?",
            (platform, account),
        )
        counts["chunks"] = int(chunks[0]["n"] or 0)  # PostgreSQL sums as numeric
        counts["pending"] = int(chunks[0]["pending"] or 0)
        return counts

    def compact_ledger(self, platform: str, account: str, *, force: bool = False) -> bool:
        """Rewrite the chunks as resolved base chunks, when the ones written since the last
        compaction are many or large (or ``force``). One transaction: a kill leaves either."""
        chunks = self._rows(
            "SELECT base, rows FROM ledger_chunks WHERE platform=? AND account=? AND base < 2",
            (platform, account),
        )
        delta = [c["rows"] for c in chunks if not c["base"]]
        based = sum(c["rows"] for c in chunks if c["base"])
        if not delta or not (force or len(delta) >= COMPACT_CHUNKS or sum(delta) > COMPACT_SHARE * based):
            return False
        frame = self.ledger_frame(platform, account, list(_SCHEMA))
        with self._tx() as db:
            self.clear_ledger(db, platform, account)
            for start in range(0, max(frame.height, 1), BASE_ROWS):
                self.write_chunk(db, platform, account, frame.slice(start, BASE_ROWS), base=True)
        return True


class _Labels:
    """``label(i)``: the purchase id of counted row ``i``, read from the store on first use
    (only rejections name rows, and most runs have none)."""

    def __init__(self, store: LedgerStore, platform: str, account: str, rows: int) -> None:
        self.store, self.platform, self.account, self.rows = store, platform, account, rows
        self.ids: list[str] | None = None

    def __call__(self, i: int) -> str:
        if self.ids is None:
            frame = self.store.ledger_frame(self.platform, self.account, ["purchase", "status", "cents"])
            frame = frame.filter(_COUNTED)
            self.ids = frame["purchase"].to_list()
            assert len(self.ids) == self.rows, "the ledger changed under a running job"
        return self.ids[i]


__all__ = ["BASE_ROWS", "COMPACT_CHUNKS", "COMPACT_SHARE", "STATUS", "LedgerStore", "chunk_frame"]
