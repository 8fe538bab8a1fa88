"""What rules read, as columns over the contact table, and the view plugins compute them from.

A :class:`Column` holds one field for every contact. Its ``kind`` says how ``data`` reads:

========  ==========================================================  =====================
kind      data                                                        value (per contact)
========  ==========================================================  =====================
int       int64                                                       ``int``
money     int64 cents (Python ints if a sum outgrows int64)           ``Decimal``
ratio     ``data`` cents / ``den`` orders                              ``Decimal`` average
date      int32 proleptic ordinals                                    ``datetime.date``
bool      bool                                                        ``bool``
coded     int32 index into ``values`` (-1: no value)                   ``values[code]``
========  ==========================================================  =====================

``present`` is False where the contact has no value (``None`` in the per-contact form). A
``coded`` column holds any Python values, :data:`~segsync.core.rules.INVALID` included, so every
feature has a columnar form: a plugin's vector function may return plain values per contact
and they are coded here. :meth:`Column.coded` gives any column that form, which is how an
operator without a vector form is asked once per distinct value instead of once per contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from segsync.core.columns.ledger import Aggregates
from segsync.core.models import Contact, PurchaseSummary

Kind = Literal["int", "money", "ratio", "date", "bool", "coded"]


@dataclass(frozen=True)
class Column:
    kind: Kind
    data: np.ndarray
    present: np.ndarray
    den: np.ndarray | None = None
    values: tuple[Any, ...] = ()

    def __len__(self) -> int:
        return len(self.data)

    def coded(self) -> tuple[np.ndarray, list[Any]]:
        """(code per contact, -1 for no value; the distinct values as the per-contact form has them)."""
        if self.kind == "coded":
            return self.data, list(self.values)
        codes = np.full(len(self), -1, np.int64)
        where = np.flatnonzero(self.present)
        if self.kind == "ratio":
            assert self.den is not None
            values, inverse = averages(self.den[where], self.data[where])
            codes[where] = inverse
            return codes, values
        uniq, inverse = np.unique(self.data[where], return_inverse=True)
        codes[where] = inverse.reshape(-1)
        return codes, [_python(self.kind, v) for v in uniq.tolist()]


def averages(orders: np.ndarray, revenue: np.ndarray) -> tuple[list[Decimal], np.ndarray]:
    """Each distinct (revenue in cents, orders) pair's average as the object path computes it
    (``revenue / orders`` in Decimal, 0 without orders), and the pair index of each row."""
    if revenue.dtype == object:
        keys: dict[tuple[int, int], int] = {}
        pairs = zip(revenue.tolist(), orders.tolist(), strict=True)
        inverse = np.asarray([keys.setdefault((r, o), len(keys)) for r, o in pairs], dtype=np.int64)
        rows: list[tuple[int, int]] = list(keys)
    else:
        uniq, inverse = np.unique(np.stack([revenue, orders], axis=1), axis=0, return_inverse=True)
        rows = [(r, o) for r, o in uniq.tolist()]
    values = [Decimal(r).scaleb(-2) / o if o else Decimal(0) for r, o in rows]
    return values, inverse.reshape(-1)


def _python(kind: Kind, raw: Any) -> Any:
    if kind == "money":
        return Decimal(raw).scaleb(-2)
    if kind == "date":
        return dt.date.fromordinal(raw)
    if kind == "bool":
        return bool(raw)
    return raw


def coded_column(values: Sequence[Any]) -> Column:
    """Any per-contact values (None: no value) as a coded column."""
    index: dict[Any, int] = {}
    kinds: dict[int, Any] = {}
    codes = np.empty(len(values), np.int64)
    for i, v in enumerate(values):
        if v is None:
            codes[i] = -1
            continue
        key = (type(v), v)  # 1 and True and Decimal(1) are equal but not the same value
        code = index.get(key)
        if code is None:
            code = index[key] = len(index)
            kinds[code] = v
        codes[i] = code
    return Column("coded", codes, codes >= 0, values=tuple(kinds[i] for i in range(len(kinds))))


@dataclass(frozen=True)
class Frame:
    """What a vector feature computes from: the contact table (index order) and its aggregates.

    ``properties(name)`` gives a contact property's raw CRM strings, one per contact.
    ``contacts()`` and ``summaries()`` build the per-contact objects, for features that have
    no vector form (first and last purchase are midnight UTC of their day: the ledger keeps days).
    """

    as_of: dt.date
    ids: Sequence[str]
    agg: Aggregates
    properties: Callable[[str], Sequence[str | None]]
    contacts: Callable[[], Sequence[Contact]]
    _summaries: list[PurchaseSummary | None] = field(default_factory=list, repr=False)

    @property
    def today(self) -> int:
        return self.as_of.toordinal()

    def summaries(self) -> list[PurchaseSummary | None]:
        if not self._summaries and len(self.ids):
            self._summaries.extend(_summaries(self.agg))
        return self._summaries


def _summaries(agg: Aggregates) -> list[PurchaseSummary | None]:
    out: list[PurchaseSummary | None] = []
    for customer, orders, revenue, first, last in zip(
        agg.customer.tolist(),
        agg.orders.tolist(),
        agg.revenue.tolist(),
        agg.first.tolist(),
        agg.last.tolist(),
        strict=True,
    ):
        if not customer:
            out.append(None)
            continue
        out.append(
            PurchaseSummary.model_construct(
                orders=orders,
                revenue=Decimal(revenue).scaleb(-2),
                first_purchase=_midnight(first),
                last_purchase=_midnight(last),
            )
        )
    return out


def _midnight(ordinal: int) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time(), dt.UTC)


# -- the built-in features, over columns ----------------------------------------------------


def first_purchase(frame: Frame) -> Column:
    return Column("date", frame.agg.first, frame.agg.customer)


def last_purchase(frame: Frame) -> Column:
    return Column("date", frame.agg.last, frame.agg.customer)


def order_count(frame: Frame) -> Column:
    return Column("int", frame.agg.orders, np.ones(len(frame.agg), bool))


def revenue(frame: Frame) -> Column:
    return Column("money", frame.agg.revenue, np.ones(len(frame.agg), bool))


def average_order(frame: Frame) -> Column:
    agg = frame.agg
    return Column("ratio", agg.revenue, agg.customer & (agg.orders > 0), den=agg.orders)


def days_since_last_purchase(frame: Frame) -> Column:
    return Column("int", frame.today - frame.agg.last.astype(np.int64), frame.agg.customer)


def days_since_first_purchase(frame: Frame) -> Column:
    return Column("int", frame.today - frame.agg.first.astype(np.int64), frame.agg.customer)


def has_purchased(frame: Frame) -> Column:
    return Column("bool", frame.agg.customer, np.ones(len(frame.agg), bool))


#: The vector forms of :data:`segsync.core.features.BUILTIN_FEATURES`, by name.
VECTOR_FEATURES: dict[str, Callable[[Frame], Column]] = {
    "first_purchase": first_purchase,
    "last_purchase": last_purchase,
    "order_count": order_count,
    "revenue": revenue,
    "average_order": average_order,
    "days_since_last_purchase": days_since_last_purchase,
    "days_since_first_purchase": days_since_first_purchase,
    "has_purchased": has_purchased,
}

__all__ = ["VECTOR_FEATURES", "Column", "Frame", "Kind", "coded_column"]
