"""``segsync score``: RFM scores and segments of an export file, no CRM needed.

Reads ``contact_id, purchased_at, amount[, currency]`` (CSV or parquet) into the ledger's
columns (:mod:`segsync.project.exports`), scores them with the columnar core and writes one
row per contact. Bad rows are reported with ``file:line`` and skipped, as a CRM record would
be: a missing contact id, a date that is not ISO 8601, an amount that is not a number. The core
then rejects, as it does for a CRM, amounts in another currency and dates after the reference date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segsync.core.catalog import Catalog
from segsync.core.columns.compute import Scored, rfm_code_column, score
from segsync.core.models import Rejection
from segsync.core.segments import SegmentPack
from segsync.core.settings import ScoringConfig
from segsync.errors import ConfigError
from segsync.project.exports import EPOCH, Ids, read_export


@dataclass(frozen=True)
class ScoreResult:
    contacts: int
    customers: int
    purchases: int
    rejections: tuple[Rejection, ...]
    out: Path


def score_file(
    purchases_path: Path,
    out: Path,
    *,
    contacts_path: Path | None,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> ScoreResult:
    export = read_export(purchases_path, contacts_path)
    ids, columns, props, rejections = export.ids, export.purchases, export.properties, export.rejections

    def prop(name: str) -> list[str | None]:
        return props.get(name, [None] * len(ids))

    scored = score(ids, columns, config=config, packs=packs, registry=registry, as_of=as_of, properties=prop)
    rejections += scored.rejections
    write_result(scored, out)
    return ScoreResult(
        contacts=len(ids),
        customers=int(scored.agg.customer.sum()),
        purchases=len(columns),
        rejections=tuple(rejections),
        out=out,
    )


# -- writing --------------------------------------------------------------------------------


def result_frame(scored: Scored) -> pl.DataFrame:
    """One row per contact: the R/F/M values, scores, code, and each set's segment."""
    agg = scored.agg
    orders = agg.orders.astype(np.int64)
    revenue = agg.revenue if agg.revenue.dtype == object else agg.revenue.astype(np.int64)
    big = revenue.dtype == object
    raw = pl.DataFrame(
        {
            "_customer": agg.customer,
            "_first": agg.first.astype(np.int32) - np.int32(EPOCH),
            "_last": agg.last.astype(np.int32) - np.int32(EPOCH),
            "_orders": orders,
            "_revenue": pl.Series([int(c) for c in revenue], dtype=pl.Int128) if big else revenue,
            "_average": pl.Series([int(c) for c in _rounded_average(revenue, orders)], dtype=pl.Int128)
            if big
            else _rounded_average(revenue, orders),
            "_r": scored.r.astype(np.int8),
            "_f": scored.f.astype(np.int8),
            "_m": scored.m.astype(np.int8),
        }
    )
    customer = pl.col("_customer")

    def only(expr: pl.Expr, name: str, when: pl.Expr = customer) -> pl.Expr:
        return pl.when(when).then(expr).otherwise(None).alias(name)

    money = pl.Decimal(38, 2)
    frame = raw.select(
        only(pl.col("_first").cast(pl.Date), "first_purchase"),
        only(pl.col("_last").cast(pl.Date), "last_purchase"),
        only(scored.as_of.toordinal() - EPOCH - pl.col("_last"), "recency_days"),
        only(pl.col("_orders"), "orders"),
        only(pl.col("_revenue").cast(money) / 100, "revenue"),
        only(pl.col("_average").cast(money) / 100, "average_order", customer & (pl.col("_orders") > 0)),
        only(pl.col("_r"), "r_score"),
        only(pl.col("_f"), "f_score"),
        only(pl.col("_m"), "m_score"),
    )
    del raw
    code = rfm_code_column(scored)
    extra: dict[str, pl.Series] = {"rfm_score": _gather(code.values, code.data)}
    for result in scored.sets:
        keys = [s.key for s in result.set.segments]
        if result.assigned is not None:
            extra[result.set.key] = _gather(keys, result.assigned)
        else:
            extra[result.set.key] = _joined(keys, result.masks)
    ids = (
        scored.ids.series
        if isinstance(scored.ids, Ids)
        else pl.Series("contact_id", list(scored.ids), dtype=pl.String)
    )
    return pl.concat([pl.DataFrame([ids]), frame, pl.DataFrame(extra)], how="horizontal")


def _gather(values: Sequence[str], codes: np.ndarray) -> pl.Series:
    table = pl.Series([*values, None], dtype=pl.String)
    return table.gather(np.where(codes >= 0, codes, len(values)))


def _joined(keys: Sequence[str], masks: Sequence[np.ndarray]) -> pl.Series:
    """Every matched segment of an independent set, ';'-joined ("" when none)."""
    bits = np.zeros(len(masks[0]) if masks else 0, np.int64)
    for i, mask in enumerate(masks):
        bits |= mask.astype(np.int64) << i
    combos, inverse = np.unique(bits, return_inverse=True)
    names = [";".join(k for i, k in enumerate(keys) if c >> i & 1) for c in combos.tolist()]
    return pl.Series(names, dtype=pl.String).gather(inverse.reshape(-1))


def _rounded_average(revenue: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """revenue / orders in cents, rounded half away from zero (Decimal's ROUND_HALF_UP)."""
    safe = np.maximum(orders, 1)
    magnitude = (2 * np.abs(revenue) + safe) // (2 * safe)
    return np.asarray(np.where(revenue < 0, -magnitude, magnitude))


def write_result(scored: Scored, out: Path) -> None:
    frame = result_frame(scored)
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        frame.write_parquet(out)
    elif suffix == ".csv":
        frame.write_csv(out)
    else:
        raise ConfigError(f"{out}: unknown file type {suffix!r}; use .csv or .parquet")


# -- the command ----------------------------------------------------------------------------


def command(args: Any, today: dt.date) -> int:
    """``segsync score``: the project's settings and packs (or the defaults), one file scored."""
    from segsync.plugins.manager import build_registry, make_plugin_manager
    from segsync.project.config import CONFIG_NAME, ProjectConfig, effective_as_of, load_config
    from segsync.project.packs import load_packs

    path = args.config or Path.cwd() / CONFIG_NAME
    found = args.config is not None or path.is_file()
    config = load_config(path) if found else ProjectConfig(path=path)
    registry = build_registry(make_plugin_manager(), platforms=False)
    packs = load_packs(config, registry)
    as_of = args.as_of or effective_as_of(config, today)
    result = score_file(
        args.purchases,
        args.out,
        contacts_path=args.contacts,
        config=config,
        packs=packs,
        registry=registry,
        as_of=as_of,
    )
    print(
        f"scored {result.contacts:,} contacts ({result.customers:,} customers) from "
        f"{result.purchases:,} purchases as of {as_of}; wrote {result.out}"
    )
    if result.rejections:
        print(f"{len(result.rejections):,} row(s) skipped:")
        for r in result.rejections[:SHOWN]:
            print(f"  {r.record_id}: {r.reason}")
        if len(result.rejections) > SHOWN:
            print(f"  ... and {len(result.rejections) - SHOWN:,} more")
    return 0


#: Rejections listed by ``segsync score`` (the count is always given).
SHOWN = 20
