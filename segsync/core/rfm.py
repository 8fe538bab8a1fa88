"""RFM scoring: recency, frequency and monetary scores from 1 to ``bins``. Pure.

Only customers (contacts with a :class:`~segsync.core.models.PurchaseSummary`) are scored, and
only against each other. A contact that never bought gets no scores at all: "no purchase" is
its own state, distinct from a score of 1, so rules can tell a lapsed customer from a prospect.

Relative ("quantile") scores use the **share of the other customers strictly below**::

    score = 1 + floor(bins * below / (n - 1)), capped at bins       (n customers; 1 if n == 1)

where ``below`` counts customers with a strictly worse value. Why this rule:

* Equal values always get equal scores. Row order, ids and input order never matter, unlike
  ``rank(method="first")`` or ``qcut``, which split ties arbitrarily or drop bins.
* The worst value always scores 1; a best value held by one customer scores ``bins``, but a
  best value many customers tie on scores lower (``[1, 5, 5, 5]`` → ``[1, 2, 2, 2]``), which
  is what keeps a crowd of one-time buyers at F=1. With all values distinct the bins hold
  equal shares, like NTILE.
* Heavy ties stay at the bottom, which is what the segment maps expect: when most customers
  bought once, they all keep F = 1 (so "New Customers" = R5 F1 is populated), instead of being
  lifted to a middle score as a mid-rank rule would.
* Degenerate populations are explained by the same sentence: one customer, or customers who
  are all equal, have nobody below them and score 1.

Recency is inverted: "better" means a more recent last purchase (fewer days since).

Fixed cut-offs (``cutoffs = "fixed"``) are ascending lists of ``bins - 1`` values:

* recency days: ``days <= cutoffs[0]`` scores ``bins``, ``<= cutoffs[1]`` scores ``bins - 1`` …
  above the last cut-off scores 1 (30/90/180/365 gives the HubSpot-app convention);
* frequency and monetary: each cut-off is the lowest value of the next score up, so a value
  below ``cutoffs[0]`` scores 1 and one at or above ``cutoffs[-1]`` scores ``bins``.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from segsync.core.models import PurchaseSummary

if TYPE_CHECKING:
    from segsync.core.settings import RfmSettings


class _Comparable(Hashable, Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


V = TypeVar("V", bound=_Comparable)


@dataclass(frozen=True, slots=True)
class RfmScores:
    r: int
    f: int
    m: int

    def code(self, bins: int) -> str:
        """The three scores as one string: ``"545"``; with 10 bins ``"10-4-5"``, to stay unambiguous."""
        sep = "-" if bins > 9 else ""
        return f"{self.r}{sep}{self.f}{sep}{self.m}"


def quantile_scores(values: Sequence[V], bins: int) -> list[int]:
    """Scores 1..bins, higher for higher values; equal values get equal scores (see module doc)."""
    n = len(values)
    if n <= 1:
        return [1] * n
    counts = Counter(values)
    score_of: dict[V, int] = {}
    below = 0
    # Integer arithmetic: no float rounding can move a value across a bin edge.
    for value in sorted(counts):
        score_of[value] = min(bins, 1 + bins * below // (n - 1))
        below += counts[value]
    return [score_of[v] for v in values]


def fixed_scores(values: Sequence[V], cutoffs: Sequence[V]) -> list[int]:
    """Scores 1..len(cutoffs)+1: one more for every cut-off at or below the value."""
    return [1 + bisect_right(cutoffs, v) for v in values]


def fixed_recency_scores(days: Sequence[int], cutoffs: Sequence[int]) -> list[int]:
    """Scores len(cutoffs)+1..1: the top score up to ``cutoffs[0]`` days, one less past each."""
    top = len(cutoffs) + 1
    return [top - bisect_left(cutoffs, d) for d in days]


def monetary_value(summary: PurchaseSummary, mode: str) -> Decimal:
    if mode == "average":
        return summary.revenue / summary.orders if summary.orders else Decimal(0)
    return summary.revenue


def score_population(
    summaries: Mapping[str, PurchaseSummary], settings: RfmSettings, as_of: dt.date
) -> dict[str, RfmScores]:
    """RFM scores for every contact in ``summaries`` (contacts without purchases are absent)."""
    ids = list(summaries)
    rows = [summaries[i] for i in ids]
    days = [(as_of - s.last_purchase.date()).days for s in rows]
    freq = [s.orders for s in rows]
    money = [monetary_value(s, settings.monetary) for s in rows]
    bins = settings.bins
    if settings.cutoffs == "fixed":
        assert settings.recency_days_cutoffs is not None  # guaranteed by RfmSettings validation
        assert settings.frequency_cutoffs is not None
        assert settings.monetary_cutoffs is not None
        r = fixed_recency_scores(days, settings.recency_days_cutoffs)
        f = fixed_scores(freq, settings.frequency_cutoffs)
        m = fixed_scores(money, settings.monetary_cutoffs)
    else:
        r = quantile_scores([-d for d in days], bins)
        f = quantile_scores(freq, bins)
        m = quantile_scores(money, bins)
    return {cid: RfmScores(ri, fi, mi) for cid, ri, fi, mi in zip(ids, r, f, m, strict=True)}
