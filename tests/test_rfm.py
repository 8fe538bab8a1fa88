"""RFM scoring: ties, degenerate populations, fixed cut-offs, monetary modes, no-purchase state."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from segsync.core.models import PurchaseSummary
from segsync.core.rfm import (
    RfmScores,
    fixed_recency_scores,
    fixed_scores,
    quantile_scores,
    score_population,
)
from segsync.project.config import RfmSettings

AS_OF = dt.date(2025, 6, 30)


@pytest.mark.parametrize(
    ("values", "bins", "expected"),
    [
        ([], 5, []),
        ([7], 5, [1]),  # one customer: nobody below
        ([3, 3, 3, 3], 5, [1, 1, 1, 1]),  # all equal: nobody below anyone
        ([1, 2], 5, [1, 5]),  # two customers: worst and best
        ([2, 1], 5, [5, 1]),
        ([5, 5], 5, [1, 1]),
        (list(range(10)), 5, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),  # distinct: equal bins, like NTILE
        (list(range(5)), 5, [1, 2, 3, 4, 5]),
        (list(range(4)), 3, [1, 2, 3, 3]),
        # Heavy ties at the bottom (most bought once) keep the lowest score together.
        ([1] * 7 + [2, 3, 9], 5, [1] * 7 + [4, 5, 5]),
        # Heavy ties at the top share one score.
        ([1, 2] + [9] * 8, 5, [1, 1] + [2] * 8),
        ([1, 1, 2, 2, 3, 3], 3, [1, 1, 2, 2, 3, 3]),
    ],
)
def test_quantile_scores(values, bins, expected):
    assert quantile_scores(values, bins) == expected


def test_equal_values_always_get_equal_scores_whatever_the_order():
    rng = random.Random(5)
    values = [rng.choice([1, 1, 1, 2, 2, 3, 5, 8, 13]) for _ in range(500)]
    scores = dict(zip(values, quantile_scores(values, 5), strict=True))
    for _ in range(5):
        rng.shuffle(values)
        for value, score in zip(values, quantile_scores(values, 5), strict=True):
            assert scores[value] == score


def test_scores_rise_with_values_and_span_the_range():
    values = [Decimal(i) / 7 for i in range(1000)]
    scores = quantile_scores(values, 5)
    assert min(scores) == 1
    assert max(scores) == 5
    pairs = sorted(zip(values, scores, strict=True))
    assert all(a[1] <= b[1] for a, b in zip(pairs, pairs[1:], strict=False))
    assert [scores.count(s) for s in range(1, 6)] == [200] * 5


@pytest.mark.parametrize(
    ("values", "cutoffs", "expected"),
    [
        ([0, 1, 2, 3, 4, 5, 8, 100], [2, 3, 5, 8], [1, 1, 2, 3, 3, 4, 5, 5]),
        ([Decimal("99.99"), Decimal(100), Decimal(1000)], [Decimal(100), Decimal(500)], [1, 2, 3]),
    ],
)
def test_fixed_scores(values, cutoffs, expected):
    assert fixed_scores(values, cutoffs) == expected


def test_fixed_recency_scores_follow_the_hubspot_app_convention():
    days = [0, 30, 31, 90, 91, 180, 181, 365, 366, 5000]
    assert fixed_recency_scores(days, [30, 90, 180, 365]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_code():
    assert RfmScores(5, 4, 5).code(5) == "545"
    assert RfmScores(10, 1, 7).code(10) == "10-1-7"


def summary(orders: int, revenue: str, last_days_ago: int) -> PurchaseSummary:
    last = dt.datetime.combine(AS_OF - dt.timedelta(days=last_days_ago), dt.time(12), tzinfo=dt.UTC)
    return PurchaseSummary(
        orders=orders,
        revenue=Decimal(revenue),
        first_purchase=last - dt.timedelta(days=400),
        last_purchase=last,
    )


POPULATION = {
    "a": summary(1, "50", 2),
    "b": summary(10, "2000", 400),
    "c": summary(4, "400", 30),
    "d": summary(2, "900", 90),
    "e": summary(1, "50", 2),
}


def test_score_population_quantiles():
    scores = score_population(POPULATION, RfmSettings(), AS_OF)
    assert set(scores) == set(POPULATION)  # contacts without purchases are simply absent
    assert scores["a"] == scores["e"]  # identical customers, identical scores
    assert scores["a"] == RfmScores(r=4, f=1, m=1)  # most recent, tied with "e": 3 of 4 others below
    assert scores["b"] == RfmScores(r=1, f=5, m=5)
    assert scores["c"].r == 3
    assert scores["c"].f == 4
    assert scores["d"].m == 4


def test_recency_is_inverted():
    pop = {"old": summary(1, "1", 300), "new": summary(1, "1", 1)}
    scores = score_population(pop, RfmSettings(), AS_OF)
    assert scores["new"].r == 5
    assert scores["old"].r == 1


def test_average_monetary():
    pop = {"many_small": summary(10, "500", 5), "few_big": summary(2, "400", 5)}
    total = score_population(pop, RfmSettings(monetary="total"), AS_OF)
    average = score_population(pop, RfmSettings(monetary="average"), AS_OF)
    assert total["many_small"].m > total["few_big"].m
    assert average["many_small"].m < average["few_big"].m


def test_fixed_cutoffs():
    settings = RfmSettings(
        cutoffs="fixed",
        recency_days_cutoffs=[30, 90, 180, 365],
        frequency_cutoffs=[2, 3, 5, 8],
        monetary_cutoffs=[Decimal(100), Decimal(250), Decimal(500), Decimal(1000)],
    )
    scores = score_population(POPULATION, settings, AS_OF)
    assert scores["a"] == RfmScores(5, 1, 1)
    assert scores["b"] == RfmScores(1, 5, 5)
    assert scores["c"] == RfmScores(5, 3, 3)  # 30 days: still the top recency score
    assert scores["d"] == RfmScores(4, 2, 4)


def test_fixed_cutoffs_with_average_monetary():
    settings = RfmSettings(
        cutoffs="fixed",
        bins=3,
        recency_days_cutoffs=[30, 180],
        frequency_cutoffs=[2, 5],
        monetary_cutoffs=[Decimal(100), Decimal(300)],
        monetary="average",
    )
    scores = score_population(POPULATION, settings, AS_OF)
    assert scores["b"].m == 2  # 2000 / 10 = 200
    assert scores["d"].m == 3  # 900 / 2 = 450


def test_bins_change_the_range():
    pop = {str(i): summary(i + 1, str(10 * (i + 1)), i) for i in range(12)}
    for bins in (2, 3, 4, 10):
        scores = score_population(pop, RfmSettings(bins=bins), AS_OF)
        for dim in ("r", "f", "m"):
            assert {getattr(s, dim) for s in scores.values()} == set(range(1, bins + 1))


def test_as_of_determines_recency_and_nothing_else_moves():
    settings = RfmSettings()
    first = score_population(POPULATION, settings, AS_OF)
    assert score_population(dict(reversed(list(POPULATION.items()))), settings, AS_OF) == first
    later = score_population(POPULATION, settings, AS_OF + dt.timedelta(days=100))
    assert later == first  # everyone ages equally: relative scores hold


def test_window_zero_orders_score_lowest_frequency():
    pop = {"lapsed": summary(0, "0", 500), "active": summary(3, "90", 10)}
    scores = score_population(pop, RfmSettings(frequency_window_days=365), AS_OF)
    assert scores["lapsed"].f == 1
    assert scores["lapsed"].m == 1
    assert scores["active"].f == 5
