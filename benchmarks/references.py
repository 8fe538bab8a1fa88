"""The references `python -m benchmarks compute` measures segsync against, written here.

Both compute what ``segsync score`` computes with the default settings and the shipped
``rfm-standard`` pack: per contact the last purchase, order count and revenue, the quantile
scores of :mod:`segsync.core.rfm` (1 + bins * customers strictly below // (n - 1), capped), the
RFM code and the segment (first match of the pack's R/F rules), written as CSV or parquet.

Run one alone: ``python benchmarks/references.py polars FILE OUT AS_OF``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

BINS = 5
#: rfm-standard's map, first match wins: (segment, r range, f range).
RFM_MAP = (
    ("champions", (5, 5), (4, 5)),
    ("loyal", (3, 5), (4, 5)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("new_customers", (5, 5), (1, 1)),
    ("promising", (4, 4), (1, 1)),
    ("need_attention", (3, 3), (3, 3)),
    ("about_to_sleep", (3, 3), (1, 2)),
    ("at_risk", (1, 2), (3, 5)),
    ("cannot_lose", (1, 1), (4, 5)),
    ("hibernating", (1, 2), (1, 2)),
)


def polars_reference(path: Path, out: Path, as_of: dt.date) -> None:
    """Idiomatic polars: one lazy query, group_by, rank, a when/then chain."""
    import polars as pl

    scan = (
        pl.scan_parquet(path)
        if path.suffix == ".parquet"
        else pl.scan_csv(
            path, schema_overrides={"contact_id": pl.String, "purchased_at": pl.Date, "amount": pl.Float64}
        )
    )
    per = scan.group_by("contact_id").agg(
        pl.col("purchased_at").cast(pl.Date).max().alias("last"),
        pl.len().alias("orders"),
        (pl.col("amount").cast(pl.Float64) * 100).round(0).cast(pl.Int64).sum().alias("cents"),
    )

    def quantile(col: str) -> pl.Expr:
        n = pl.len()
        below = pl.col(col).rank("min") - 1
        return pl.min_horizontal(pl.lit(BINS), 1 + (BINS * below) // (n - 1)).cast(pl.Int8)

    scored = per.with_columns(
        r=quantile("last"),
        f=quantile("orders"),
        m=quantile("cents"),
        recency_days=(pl.lit(as_of) - pl.col("last")).dt.total_days(),
    )
    segment = pl.lit(None, dtype=pl.String)
    for name, (r0, r1), (f0, f1) in reversed(RFM_MAP):
        segment = (
            pl.when(pl.col("r").is_between(r0, r1) & pl.col("f").is_between(f0, f1))
            .then(pl.lit(name))
            .otherwise(segment)
        )
    result = scored.with_columns(
        rfm_score=pl.concat_str(["r", "f", "m"]),
        rfm=segment,
        revenue=pl.col("cents").cast(pl.Decimal(38, 2)) / 100,
    ).drop("cents")
    frame = result.collect()
    frame.write_parquet(out) if out.suffix == ".parquet" else frame.write_csv(out)


def numpy_reference(path: Path, out: Path, as_of: dt.date) -> None:
    """numpy for the work, polars only to read and write the files (numpy cannot read parquet)."""
    import numpy as np
    import polars as pl

    frame = (
        pl.read_parquet(path)
        if path.suffix == ".parquet"
        else pl.read_csv(
            path, schema_overrides={"contact_id": pl.String, "purchased_at": pl.Date, "amount": pl.Float64}
        )
    )
    # the ids are integers, as CRM ids are: numpy factorises those without Python strings
    width = int(frame["contact_id"].str.len_bytes().max() or 0)
    ids, who = np.unique(frame["contact_id"].cast(pl.Int64).to_numpy(), return_inverse=True)
    day = frame["purchased_at"].cast(pl.Date).cast(pl.Int32).to_numpy()
    cents = np.rint(frame["amount"].cast(pl.Float64).to_numpy() * 100).astype(np.int64)
    del frame
    n = len(ids)
    orders = np.bincount(who, minlength=n)
    revenue = np.rint(np.bincount(who, weights=cents, minlength=n)).astype(np.int64)
    last = np.full(n, np.iinfo(np.int32).min, np.int32)
    np.maximum.at(last, who, day)

    def quantile(values: np.ndarray) -> np.ndarray:
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        below = np.cumsum(counts) - counts
        return np.minimum(BINS, 1 + (BINS * below) // (n - 1))[inverse]

    r, f, m = quantile(last), quantile(orders), quantile(revenue)
    code = np.full(n, len(RFM_MAP), np.int64)
    for i, (_, (r0, r1), (f0, f1)) in reversed(list(enumerate(RFM_MAP))):
        code[(r >= r0) & (r <= r1) & (f >= f0) & (f <= f1)] = i
    segment = pl.Series([name for name, _, _ in RFM_MAP] + [None], dtype=pl.String).gather(code)
    result = pl.DataFrame(
        {
            "contact_id": pl.Series(ids).cast(pl.String).str.zfill(width),
            "last": pl.Series(last).cast(pl.Date),
            "orders": orders,
            "revenue": pl.Series(revenue).cast(pl.Decimal(38, 2)) / 100,
            "recency_days": as_of.toordinal() - dt.date(1970, 1, 1).toordinal() - last.astype(np.int64),
            "r": r,
            "f": f,
            "m": m,
            "rfm_score": [f"{a}{b}{c}" for a, b, c in zip(r.tolist(), f.tolist(), m.tolist(), strict=True)],
            "rfm": segment,
        }
    )
    result.write_parquet(out) if out.suffix == ".parquet" else result.write_csv(out)


if __name__ == "__main__":
    which, src, dst, day = sys.argv[1:5]
    fn = polars_reference if which == "polars" else numpy_reference
    fn(Path(src), Path(dst), dt.date.fromisoformat(day))
