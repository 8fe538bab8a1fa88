"""Export files (CSV or parquet) read into the ledger's columns, for ``segsync score``.

``contact_id, purchased_at, amount[, currency]``: one streaming polars scan parses the common
case without holding the file's text; rows the fast parse cannot read are read again, alone,
and either parsed exactly (a datetime, an exponent amount) or reported with ``file:line`` and
skipped, as a CRM record would be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import polars as pl

from segsync.core.columns.ledger import PurchaseColumns, dense_codes
from segsync.core.models import Rejection
from segsync.core.record_checks import quote, read_amount, to_cents
from segsync.errors import ConfigError

REQUIRED = ("contact_id", "purchased_at", "amount")
EPOCH = dt.date(1970, 1, 1).toordinal()
#: Above this many cents a double may not hold the amount's cents exactly: read as text.
_FLOAT_EXACT_CENTS = 2**50


@dataclass(frozen=True)
class Export:
    """A purchases file read: the contact table, the purchases as columns, the contacts'
    properties (with ``--contacts``) and the rows skipped."""

    ids: Sequence[str]
    purchases: PurchaseColumns
    properties: dict[str, list[str | None]]
    rejections: list[Rejection]


def read_export(path: Path, contacts_path: Path | None) -> Export:
    source = _Source(path, REQUIRED, optional=("currency",))
    fast = source.fast_columns()
    ids, contact, props, rejections = _contacts(source, fast, contacts_path)
    columns, bad = _purchase_columns(source, fast, contact)
    return Export(ids, columns, props, rejections + bad)


class _Source:
    """One input file, scanned lazily: the common case (clean rows) is parsed in one streaming
    pass that never holds the file's text; rows that need a closer look are read again, alone."""

    def __init__(self, path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.path = path
        self.parquet = path.suffix.lower() in (".parquet", ".pq")
        if not self.parquet and path.suffix.lower() not in (".csv", ".txt"):
            raise ConfigError(f"{path}: unknown file type {path.suffix!r}; use .csv or .parquet")
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        self.schema = self._guard(lambda: self.scan().collect_schema())
        missing = [c for c in required if c not in self.schema]
        if missing:
            found = ", ".join(self.schema.names()) or "none"
            raise ConfigError(
                f"{path}: missing column(s) {', '.join(missing)} (found: {found}); the columns are "
                f"{', '.join(required)}{''.join(', optional ' + c for c in optional)}"
            )

    def scan(self) -> pl.LazyFrame:
        if self.parquet:
            return pl.scan_parquet(self.path)
        return pl.scan_csv(self.path, infer_schema=False)

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except (pl.exceptions.PolarsError, OSError) as exc:
            kind = "parquet" if self.parquet else "CSV"
            raise ConfigError(f"{self.path}: cannot be read as {kind} ({type(exc).__name__})") from None

    def collect(self, frame: pl.LazyFrame) -> pl.DataFrame:
        return self._guard(lambda: frame.collect(engine="streaming"))  # type: ignore[no-any-return]

    def rows(self, column: str, rows: np.ndarray) -> list[Any]:
        """The raw values of ``column`` at ``rows`` (a second, filtered pass)."""
        if not len(rows):
            return []
        wanted = pl.Series("_row", rows, dtype=pl.UInt32)
        got = self.collect(
            self.scan()
            .with_row_index("_row")
            .filter(pl.col("_row").is_in(wanted.implode()))
            .select("_row", column)
        )
        by_row = dict(zip(got["_row"].to_list(), got[column].to_list(), strict=True))
        return [by_row.get(int(r)) for r in rows]

    def where(self, rows: np.ndarray | Sequence[int]) -> list[str]:
        return [self.label(int(i)) for i in rows]

    def label(self, row: int) -> str:
        """``file:line`` for CSV rows (the header is line 1), ``file:row N`` for parquet."""
        return f"{self.path.name}:row {row + 1}" if self.parquet else f"{self.path.name}:{row + 2}"

    def fast_columns(self) -> pl.DataFrame:
        schema = self.schema
        cid = pl.col("contact_id").cast(pl.String)
        exprs = [
            pl.col("contact_id").cast(pl.Int64, strict=False).alias("cid"),
            cid.str.len_bytes().cast(pl.UInt16).alias("cid_len"),
            cid.str.slice(0, 1).is_in(["0", "+", "-"]).alias("cid_lead"),
            (cid.is_null() | (cid.str.strip_chars() == "")).alias("cid_blank"),
            _day_expr(schema["purchased_at"]).alias("day"),
            *_amount_exprs(schema["amount"]),
        ]
        if "currency" in schema:
            exprs.append(pl.col("currency").cast(pl.String).str.strip_chars().alias("currency"))
        return self.collect(self.scan().select(exprs))


def _day_expr(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("purchased_at")
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        return col.dt.date()  # in the column's own time zone, as a CRM's close date
    return col.cast(pl.String).str.to_date("%Y-%m-%d", strict=False)


def _amount_exprs(dtype: pl.DataType) -> list[pl.Expr]:
    """Cents (rounded) and whether the double parse is exact for them, computed in the scan."""
    number = pl.col("amount").cast(pl.Float64, strict=dtype != pl.String) * 100
    cents = number.round(0)
    fine = number.is_finite() & ((number - cents).abs() < 1e-6) & (number.abs() < _FLOAT_EXACT_CENTS)
    return [
        pl.when(fine).then(cents).otherwise(0).cast(pl.Int64).alias("cents"),
        fine.fill_null(False).alias("fine"),
    ]


def _contacts(
    source: _Source, fast: pl.DataFrame, contacts_path: Path | None
) -> tuple[Sequence[str], np.ndarray, dict[str, list[str | None]], list[Rejection]]:
    """The contact table, each purchase row's index in it (-1: skipped), the properties."""
    blank = fast["cid_blank"].to_numpy()
    rejections = [
        Rejection(kind="purchase", record_id=where, reason="missing contact_id")
        for where in source.where(np.flatnonzero(blank))
    ]
    if contacts_path is None:
        ids, index = _factorize(source, fast, blank)
        index[blank] = -1
        return ids, index, {}, rejections
    table = _Source(contacts_path, ("contact_id",))
    ids, props, rejections_c = _contact_table(table)
    raw = source.collect(source.scan().select(pl.col("contact_id").cast(pl.String)))["contact_id"]
    lookup = pl.DataFrame({"contact_id": ids, "_i": np.arange(len(ids), dtype=np.int64)})
    joined = pl.DataFrame({"contact_id": raw}).join(
        lookup, on="contact_id", how="left", maintain_order="left"
    )
    index = joined["_i"].fill_null(-1).to_numpy().astype(np.int64)
    orphans = np.flatnonzero((index < 0) & ~blank)
    for where, cid in zip(source.where(orphans), raw.gather(orphans).to_list(), strict=True):
        reason = f"contact {quote(cid)} is not in {contacts_path.name}; its purchase is not counted"
        rejections.append(Rejection(kind="purchase", record_id=where, reason=reason))
    return ids, index, props, rejections_c + rejections


def _contact_table(source: _Source) -> tuple[list[str], dict[str, list[str | None]], list[Rejection]]:
    table = source.collect(source.scan())
    ids_raw = table["contact_id"].cast(pl.String).to_list()
    keep: list[int] = []
    seen: set[str] = set()
    rejections: list[Rejection] = []
    for i, cid in enumerate(ids_raw):
        if cid is None or not cid.strip():
            rejections.append(
                Rejection(kind="contact", record_id=source.label(i), reason="missing contact_id")
            )
        elif cid in seen:
            reason = f"duplicate contact id {quote(cid)}; the first copy is used"
            rejections.append(Rejection(kind="contact", record_id=source.label(i), reason=reason))
        else:
            seen.add(cid)
            keep.append(i)
    kept = table[keep]
    props = {c: kept[c].cast(pl.String).to_list() for c in kept.columns if c != "contact_id"}
    return [ids_raw[i] for i in keep], props, rejections


class Ids(Sequence[str]):
    """Contact ids kept in a polars column: millions of them as Python strings would cost more
    memory than everything else the command holds."""

    def __init__(self, series: pl.Series) -> None:
        self.series = series

    def __len__(self) -> int:
        return len(self.series)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return self.series[i].to_list()
        return str(self.series[i])

    def __iter__(self) -> Iterator[str]:
        return iter(self.series.to_list())


def _factorize(source: _Source, fast: pl.DataFrame, blank: np.ndarray) -> tuple[Sequence[str], np.ndarray]:
    """Distinct contact ids (sorted) and each row's index among them.

    CRM ids are integers: when every id reads as one and no two spellings can name the same
    integer (all of one length, or none with a leading zero or sign), the ids are factorised as
    integers, with a count instead of a sort when they are dense; otherwise polars groups the text.
    """
    ints = fast["cid"]
    live = None if not blank.any() else ~blank
    lengths = fast["cid_len"].to_numpy()
    if live is not None:
        lengths = lengths[live]
    width = int(lengths.max()) if len(lengths) else 0
    same_width = len(lengths) > 0 and int(lengths.min()) == width
    numeric = ints.null_count() == int(blank.sum()) and (same_width or not fast["cid_lead"].any())
    if numeric:
        values = ints.to_numpy() if live is None else ints.fill_null(0).to_numpy()[live]
        uniq, index = dense_codes(values)
        if live is not None:
            full = np.full(len(blank), -1, np.int64)
            full[live] = index
            index = full
        ids = pl.Series("contact_id", uniq).cast(pl.String)
        return Ids(ids.str.zfill(width) if same_width else ids), index
    raw = source.collect(source.scan().select(pl.col("contact_id").cast(pl.String).fill_null("")))
    groups = raw.with_row_index("_row").group_by("contact_id").agg(pl.col("_row")).sort("contact_id")
    index = np.empty(len(raw), np.int64)
    rows = groups["_row"].explode().to_numpy()
    index[rows] = np.repeat(np.arange(len(groups), dtype=np.int64), groups["_row"].list.len().to_numpy())
    return Ids(groups["contact_id"]), index


def _purchase_columns(
    source: _Source, fast: pl.DataFrame, contact: np.ndarray
) -> tuple[PurchaseColumns, list[Rejection]]:
    day, day_bad = _days(source, fast["day"], contact >= 0)
    cents, amount_bad = _cents(source, fast, contact >= 0)
    rejections: list[Rejection] = []
    for row, reason in sorted({**amount_bad, **day_bad}.items()):
        rejections.append(Rejection(kind="purchase", record_id=source.label(row), reason=reason))
    ok = contact >= 0
    if day_bad or amount_bad:
        ok[list({*day_bad, *amount_bad})] = False
    if ok.all():  # a clean file: the columns as they are, no copy
        currency, names = _currencies(fast, None)
        return PurchaseColumns.of(contact, cents, day, currency, names, source.label), rejections
    keep = np.flatnonzero(ok)
    currency, names = _currencies(fast, keep)
    columns = PurchaseColumns.of(
        contact[keep], cents[keep], day[keep], currency, names, lambda i: source.label(int(keep[i]))
    )
    return columns, rejections


def _days(source: _Source, column: pl.Series, live: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Each row's own calendar day as an ordinal; what is wrong with the unreadable ones.

    Plain dates parse in the scan; anything else (datetimes, odd text) is read again per row:
    the date part of an ISO 8601 datetime is its day.
    """
    ordinal = column.to_physical().fill_null(0).to_numpy() + np.int32(EPOCH)
    again = np.flatnonzero(column.is_null().to_numpy() & live)
    bad: dict[int, str] = {}
    for row, raw in zip(again.tolist(), source.rows("purchased_at", again), strict=True):
        day = _iso_day(raw)  # a datetime, or not a date at all
        if day is None:
            text = "is missing" if raw is None else f"{quote(raw)} is not a date"
            bad[row] = f"purchased_at {text} (write 2024-01-31 or 2024-01-31T12:00:00Z)"
        else:
            ordinal[row] = day.toordinal()
    return ordinal, bad


def _iso_day(raw: Any) -> dt.date | None:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[10:11] not in ("", "T", "t", " "):
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _cents(source: _Source, fast: pl.DataFrame, live: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Whole cents per row, rounded half up as :func:`read_amount` and the ledger do; what is
    wrong with the unreadable amounts.

    A double parse is exact for whole cents of ordinary size; any other row (sub-cent digits,
    huge, unparsable) is read again as text by :func:`read_amount`.
    """
    out = fast["cents"].to_numpy()
    fine = fast["fine"].to_numpy()
    again = np.flatnonzero(~fine & live) if not fine.all() else np.zeros(0, np.int64)
    if len(again):
        out = out.copy()
    bad: dict[int, str] = {}
    for row, raw in zip(again.tolist(), source.rows("amount", again), strict=True):
        got = read_amount(raw) if raw is not None else "is missing"
        if isinstance(got, str):
            bad[row] = f"amount {got}"
        else:
            out[row] = to_cents(got)
    return out, bad


def _currencies(frame: pl.DataFrame, keep: np.ndarray | None) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if "currency" not in frame.columns:
        return None, ()
    text = frame["currency"] if keep is None else frame["currency"].gather(keep)
    names = tuple(sorted(v for v in text.unique().to_list() if v))
    code = {n: i for i, n in enumerate(names)}
    mapped = text.replace_strict(code, default=-1, return_dtype=pl.Int16).to_numpy()
    return mapped, names
