"""The built-in rule operators over whole columns (their ``vector`` forms).

Each returns one bool per contact, meaningful where the column has a value (the evaluator
masks the rest), or None for a kind of column it has no fast form for: then the operator's
per-value ``test`` is asked once per distinct value. Comparisons are exact: a ``Decimal``
threshold is turned into whole cents (or whole numbers) with floor and ceiling, averages are
compared as ``cents * 10**k ⋚ p * orders`` in integers, never through floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from segsync.core.columns.column import Column

Mask = np.ndarray | None
_SAFE = 2**62
_SCALE = {"int": 1, "money": 100}


def _compare(col: Column, op: str, arg: Any) -> Mask:
    """``value op arg`` for op in lt, lte, gt, gte, eq, neq."""
    if col.kind == "date":
        if not isinstance(arg, dt.date):
            return None
        return _ints(col.data, op, Decimal(arg.toordinal()))
    if col.kind == "bool":
        if op not in ("eq", "neq") or not isinstance(arg, bool):
            return None
        return np.asarray((col.data == arg) if op == "eq" else (col.data != arg), dtype=bool)
    if not isinstance(arg, Decimal):
        return None
    if col.kind in _SCALE:
        return _ints(col.data, op, arg * _SCALE[col.kind])
    if col.kind == "ratio":
        return _ratio(col, op, arg)
    return None


def _ints(data: np.ndarray, op: str, t: Decimal) -> np.ndarray:
    """Integers against an exact threshold: x > t ⇔ x > floor(t), x >= t ⇔ x >= ceil(t)…"""
    low, high = int(t.to_integral_value(ROUND_FLOOR)), int(t.to_integral_value(ROUND_CEILING))
    whole = low == high
    if op == "gt":
        out = data > low
    elif op == "gte":
        out = data >= high
    elif op == "lt":
        out = data < high
    elif op == "lte":
        out = data <= low
    elif op == "eq":
        out = data == low if whole else np.zeros(len(data), bool)
    else:
        out = data != low if whole else np.ones(len(data), bool)
    return np.asarray(out, dtype=bool)


def _ratio(col: Column, op: str, arg: Decimal) -> np.ndarray:
    """num / (100 * den) op arg  ⇔  num * 10**k op p * den, where arg * 100 = p / 10**k."""
    assert col.den is not None
    scaled = arg * 100
    exponent = scaled.as_tuple().exponent
    k = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    p = int(scaled.scaleb(k))
    num, den = col.data, col.den
    big = len(num) and (
        num.dtype == object
        or int(np.abs(num).max()) * 10**k >= _SAFE
        or abs(p) * int(np.abs(den).max()) >= _SAFE
    )
    if big:
        num, den = num.astype(object), den.astype(object)
    left, right = num * 10**k, p * den
    table: dict[str, Callable[[Any, Any], Any]] = {
        "gt": np.greater,
        "gte": np.greater_equal,
        "lt": np.less,
        "lte": np.less_equal,
        "eq": np.equal,
        "neq": np.not_equal,
    }
    return np.asarray(table[op](left, right), dtype=bool)


def _op(name: str) -> Callable[[Column, Any, dt.date], Mask]:
    def vector(col: Column, arg: Any, as_of: dt.date) -> Mask:
        return _compare(col, name, arg)

    vector.__name__ = f"{name}_vector"
    return vector


eq = _op("eq")
neq = _op("neq")
gt = _op("gt")
gte = _op("gte")
lt = _op("lt")
lte = _op("lte")


def in_(col: Column, arg: tuple[Any, ...], as_of: dt.date) -> Mask:
    out = np.zeros(len(col), bool)
    for value in arg:
        one = _compare(col, "eq", value)
        if one is None:
            return None
        out |= one
    return out


def between(col: Column, arg: tuple[Any, Any], as_of: dt.date) -> Mask:
    low, high = _compare(col, "gte", arg[0]), _compare(col, "lte", arg[1])
    if low is None or high is None:
        return None
    return np.asarray(low & high)


def exists(col: Column, arg: bool, as_of: dt.date) -> Mask:
    if col.kind == "coded":
        return None  # an unreadable value (INVALID) is neither present nor absent
    return np.asarray(col.present == arg)


def within_last_days(col: Column, arg: int, as_of: dt.date) -> Mask:
    if col.kind != "date":
        return None
    age = as_of.toordinal() - col.data.astype(np.int64)
    return (age >= 0) & (age <= arg)


def older_than_days(col: Column, arg: int, as_of: dt.date) -> Mask:
    if col.kind != "date":
        return None
    return (as_of.toordinal() - col.data.astype(np.int64)) > arg


__all__ = [
    "between",
    "eq",
    "exists",
    "gt",
    "gte",
    "in_",
    "lt",
    "lte",
    "neq",
    "older_than_days",
    "within_last_days",
]
