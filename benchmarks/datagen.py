"""Seeded CDNOW-like purchase data for the compute benchmark.

CDNOW's public extract (23,570 customers, 69,659 purchases over 18 months) has the shape most
retail accounts share: about half the buyers buy once, a heavy tail buys a lot, amounts are
log-normal. This draws the same shape at any size, from one seed, with numpy, and writes it as
CSV (and parquet) with the columns ``segsync score`` reads: contact_id, purchased_at, amount.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

#: Purchases per contact in CDNOW-like data (10M purchases → 3.38M contacts).
CONTACTS_PER_PURCHASE = 0.338
START = dt.date(2024, 1, 1)
SPAN_DAYS = 548  # 18 months, as CDNOW
AS_OF = START + dt.timedelta(days=SPAN_DAYS + 30)


def orders_per_contact(contacts: int, purchases: int, rng: np.random.Generator) -> np.ndarray:
    """Half the contacts buy once; the rest follow a heavy (log-normal) tail; sums to ``purchases``."""
    counts = np.ones(contacts, dtype=np.int64)
    repeat = rng.random(contacts) >= 0.5
    extra = purchases - contacts
    tail = rng.lognormal(mean=0.0, sigma=1.2, size=int(repeat.sum()))
    tail = np.floor(tail / tail.sum() * extra).astype(np.int64)
    counts[repeat] += tail
    short = purchases - int(counts.sum())
    if short > 0:  # the floor's remainder: one more order for some repeat buyers
        picks = rng.choice(np.flatnonzero(repeat), size=short, replace=True)
        np.add.at(counts, picks, 1)
    return counts


def generate(purchases: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Columns: contact (int), day (ordinal), cents (int64), shuffled into file order."""
    rng = np.random.default_rng(seed)
    contacts = max(1, round(purchases * CONTACTS_PER_PURCHASE))
    counts = orders_per_contact(contacts, purchases, rng)
    contact = np.repeat(np.arange(contacts, dtype=np.int64), counts)
    day = START.toordinal() + rng.integers(0, SPAN_DAYS, size=purchases)
    cents = np.round(rng.lognormal(mean=7.8, sigma=0.9, size=purchases)).astype(np.int64) + 100
    order = rng.permutation(purchases)
    return {"contact": contact[order], "day": day[order], "cents": cents[order]}


def write(purchases: int, folder: Path, seed: int = 1) -> dict[str, Path]:
    """The data as ``purchases-N.csv`` and ``purchases-N.parquet`` in ``folder`` (cached)."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / f"purchases-{purchases}.csv", folder / f"purchases-{purchases}.parquet"
    if csv.exists() and parquet.exists():
        return {"csv": csv, "parquet": parquet}
    cols = generate(purchases, seed)
    epoch = dt.date(1970, 1, 1).toordinal()
    frame = pl.DataFrame(
        {
            "contact_id": pl.Series(cols["contact"]).cast(pl.String).str.zfill(8),
            "purchased_at": pl.Series(cols["day"] - epoch).cast(pl.Date),
        }
    ).with_columns(amount=_money(pl.Series(cols["cents"])))
    frame.write_csv(csv)
    frame.write_parquet(parquet)
    return {"csv": csv, "parquet": parquet}


def _money(cents: object) -> object:
    """Whole cents as text with two decimals (all amounts here are positive)."""
    import polars as pl

    series = pl.Series(cents)
    return (series // 100).cast(pl.String) + "." + (series % 100).cast(pl.String).str.zfill(2)
