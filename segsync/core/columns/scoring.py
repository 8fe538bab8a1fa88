"""RFM scores over columns: the rule of :mod:`segsync.core.rfm`, in O(n) where the data allows.

The quantile rule needs, per customer, how many customers have a strictly worse value. Order
counts, recency days and (mostly) revenue in cents are integers over a small range, so a
``bincount`` and a running sum give every "below" count at once, with no sort; a wide range
(revenue of a few huge spenders) falls back to one ``np.unique``. Averages (``monetary =
"average"``) are compared as :class:`~decimal.Decimal`, as the object path does, once per
distinct (revenue, orders) pair.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter
from decimal import ROUND_CEILING, Decimal

import numpy as np

from segsync.core.columns.column import averages
from segsync.core.columns.ledger import Aggregates
from segsync.core.settings import RfmSettings

#: Value ranges up to this many times the population (or 65,536) are counted, not sorted.
_COUNTING_SPAN = 4


def quantile_scores(values: np.ndarray, bins: int) -> np.ndarray:
    """Scores 1..bins (int64), higher for higher values, ties equal: ``rfm.quantile_scores``."""
    n = len(values)
    if n <= 1:
        return np.ones(n, np.int64)
    if values.dtype.kind in "iu":
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < max(_COUNTING_SPAN * n, 1 << 16):
            shifted = values - lo
            counts = np.bincount(shifted, minlength=hi - lo + 1)
            table = _table(counts, n, bins)
            out: np.ndarray = table[shifted]
            return out
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranked: np.ndarray = _table(counts, n, bins)[inverse]
    return ranked


def _table(counts: np.ndarray, n: int, bins: int) -> np.ndarray:
    below = np.cumsum(counts) - counts
    return np.asarray(np.minimum(bins, 1 + (bins * below) // (n - 1)))


def score_columns(
    agg: Aggregates, settings: RfmSettings, as_of: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R, F and M scores per contact (0 for contacts without purchases)."""
    who = np.flatnonzero(agg.customer)
    last, orders, revenue = agg.last[who], agg.orders[who], agg.revenue[who]
    bins = settings.bins
    if settings.cutoffs == "fixed":
        assert settings.recency_days_cutoffs is not None  # guaranteed by RfmSettings validation
        assert settings.frequency_cutoffs is not None
        assert settings.monetary_cutoffs is not None
        r = _fixed_recency(as_of.toordinal() - last, settings.recency_days_cutoffs)
        f = 1 + np.searchsorted(np.asarray(settings.frequency_cutoffs), orders, side="right")
        m = _fixed_monetary(orders, revenue, settings)
    else:
        r = quantile_scores(last, bins)  # a later last purchase is a better recency
        f = quantile_scores(orders, bins)
        if settings.monetary == "average":
            m = _monetary_quantiles(orders, revenue, bins)
        else:
            m = quantile_scores(revenue, bins)
    out = []
    for scores in (r, f, m):
        full = np.zeros(len(agg), np.int64)
        full[who] = scores
        out.append(full)
    return out[0], out[1], out[2]


def _fixed_recency(days: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    return np.asarray(len(cutoffs) + 1 - np.searchsorted(np.asarray(cutoffs), days, side="left"))


def _fixed_monetary(orders: np.ndarray, revenue: np.ndarray, settings: RfmSettings) -> np.ndarray:
    cutoffs = list(settings.monetary_cutoffs or ())
    if settings.monetary == "average":
        values, inverse = averages(orders, revenue)
        table = np.asarray([1 + bisect_right(cutoffs, v) for v in values], dtype=np.int64)
        return np.asarray(table[inverse])
    # a whole number of cents is at or above a cut-off exactly when it reaches its ceiling
    edges = [int((c * 100).to_integral_value(ROUND_CEILING)) for c in cutoffs]
    if revenue.dtype == object:
        return np.asarray([1 + bisect_right(edges, v) for v in revenue.tolist()], dtype=np.int64)
    return 1 + np.searchsorted(np.asarray(edges, dtype=np.int64), revenue, side="right")


def _monetary_quantiles(orders: np.ndarray, revenue: np.ndarray, bins: int) -> np.ndarray:
    n = len(orders)
    if n <= 1:
        return np.ones(n, np.int64)
    values, inverse = averages(orders, revenue)
    weight = Counter(inverse.tolist())
    by_value: Counter[Decimal] = Counter()
    for i, v in enumerate(values):
        by_value[v] += weight[i]
    score_of: dict[Decimal, int] = {}
    below = 0
    for v in sorted(by_value):
        score_of[v] = min(bins, 1 + bins * below // (n - 1))
        below += by_value[v]
    table = np.asarray([score_of[v] for v in values], dtype=np.int64)
    return np.asarray(table[inverse])


__all__ = ["quantile_scores", "score_columns"]
