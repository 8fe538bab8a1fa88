"""Purchases as columns, and the per-contact aggregates every feature is derived from. Pure.

A :class:`PurchaseColumns` holds one row per (purchase, contact): the contact's index in the
contact table, the amount in integer cents, the purchase's own calendar day and its currency.
:func:`aggregate` applies every purchase-related choice of ``[rfm]`` exactly as
:func:`segsync.core.features.summarise` does (it is the oracle the golden tests hold this to),
over whole columns: one ``bincount`` per figure instead of a Python step per purchase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from segsync.core.models import Rejection
from segsync.core.record_checks import EARLIEST_ORDINAL, day_reason
from segsync.core.settings import RfmSettings

#: Sums of cents stay in float64's exact-integer range below this (bincount sums in float64).
_EXACT_FLOAT = 2**53
_INT64_SAFE = 2**62


@dataclass(frozen=True)
class PurchaseColumns:
    """One row per (purchase, contact), already free of duplicates and of unreadable amounts.

    ``contact``: index into the contact table (int32); ``cents``: amount in cents (int64,
    negative for refunds); ``day``: the date the purchase closed, as a proleptic ordinal in its
    own calendar (int32); ``currency``: index into ``currencies``, -1 when the CRM does not say.
    ``label(i)`` names row ``i`` in a rejection (a deal id, or ``file:line``).
    """

    contact: np.ndarray
    cents: np.ndarray
    day: np.ndarray
    currency: np.ndarray
    currencies: tuple[str, ...] = ()
    label: Callable[[int], str] = str

    def __len__(self) -> int:
        return len(self.cents)

    @classmethod
    def of(
        cls,
        contact: Sequence[int] | np.ndarray,
        cents: Sequence[int] | np.ndarray,
        day: Sequence[int] | np.ndarray,
        currency: Sequence[int] | np.ndarray | None = None,
        currencies: tuple[str, ...] = (),
        label: Callable[[int], str] = str,
    ) -> PurchaseColumns:
        n = len(cents)
        return cls(
            contact=np.asarray(contact, dtype=np.int32),
            cents=_int_array(cents),
            day=np.asarray(day, dtype=np.int32),
            currency=np.full(n, -1, np.int16) if currency is None else np.asarray(currency, dtype=np.int16),
            currencies=currencies,
            label=label,
        )


def _int_array(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """int64, or Python ints (object) when an amount does not fit: absurd, but exact."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.astype(np.int64, copy=False)
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        return np.asarray(values, dtype=object)


@dataclass(frozen=True)
class Aggregates:
    """Per contact (index order): orders and revenue (cents) in the frequency window, first
    and last order day over all history, and whether it is a customer at all. Non-customers
    have 0 orders, 0 revenue and meaningless days."""

    orders: np.ndarray
    revenue: np.ndarray
    first: np.ndarray
    last: np.ndarray
    customer: np.ndarray

    def __len__(self) -> int:
        return len(self.orders)


def aggregate(
    purchases: PurchaseColumns, contacts: int, settings: RfmSettings, as_of: dt.date
) -> tuple[Aggregates, list[Rejection]]:
    """The aggregates of ``contacts`` contacts, and the rejected rows (another currency, a close
    day after ``as_of`` or before 1900), worded as :func:`~segsync.core.features.summarise` words them."""
    today = as_of.toordinal()
    bad_currency = _foreign(purchases, settings.currency)
    bad_day = (purchases.day > today) | (purchases.day < EARLIEST_ORDINAL)
    rejected = bad_currency | bad_day
    rejections = _rejections(purchases, bad_currency, bad_day & ~bad_currency, settings.currency, as_of)
    keep = ~rejected
    cents, day, who = purchases.cents, purchases.day, purchases.contact
    positive = cents > 0
    order_like = positive | (cents == 0) if settings.zero_amounts == "count" else positive
    order_like &= keep
    in_window = (
        keep if not settings.frequency_window_days else keep & (today - day <= settings.frequency_window_days)
    )
    counted = order_like & in_window
    summed = counted | (in_window & (cents < 0)) if settings.refunds == "subtract" else counted
    orders = np.bincount(who[counted], minlength=contacts).astype(np.int64)
    revenue = _sum_by(who[summed], cents[summed], contacts)
    first = np.full(contacts, np.iinfo(np.int32).max, np.int32)
    last = np.full(contacts, np.iinfo(np.int32).min, np.int32)
    np.minimum.at(first, who[order_like], day[order_like])
    np.maximum.at(last, who[order_like], day[order_like])
    customer = last != np.iinfo(np.int32).min
    if not customer.all():  # refunds alone do not make a customer: nothing of theirs counts
        revenue = np.where(customer, revenue, 0).astype(revenue.dtype)
        orders[~customer] = 0
    return Aggregates(orders, revenue, first, last, customer), rejections


def _foreign(purchases: PurchaseColumns, home: str) -> np.ndarray:
    codes = [i for i, name in enumerate(purchases.currencies) if name and name.upper() != home]
    if not codes:
        return np.zeros(len(purchases), bool)
    return np.isin(purchases.currency, np.asarray(codes, dtype=np.int16))


def _rejections(
    purchases: PurchaseColumns, currency: np.ndarray, day: np.ndarray, home: str, as_of: dt.date
) -> list[Rejection]:
    out: list[Rejection] = []
    for i in np.flatnonzero(currency | day).tolist():
        if currency[i]:
            code = purchases.currencies[purchases.currency[i]].upper()
            reason = (
                f"amount is in {code}, not the home currency {home}; amounts in "
                "other currencies are never summed (set [rfm] currency or convert it in the CRM)"
            )
        else:
            reason = day_reason(dt.date.fromordinal(int(purchases.day[i])), as_of)
        out.append(Rejection(kind="purchase", record_id=purchases.label(i), reason=reason))
    return out


def _sum_by(who: np.ndarray, cents: np.ndarray, contacts: int) -> np.ndarray:
    """Exact per-contact sums of cents: float64 bincount while every partial sum is an exact
    integer in a double, int64 while it cannot overflow, Python ints beyond."""
    if cents.dtype != object:
        bound = int(np.abs(cents).sum(dtype=np.float64))
        if bound < _EXACT_FLOAT:
            return np.rint(np.bincount(who, weights=cents, minlength=contacts)).astype(np.int64)
        if bound < _INT64_SAFE:
            out = np.zeros(contacts, np.int64)
            np.add.at(out, who, cents)
            return out
    total = np.zeros(contacts, dtype=object)
    total[:] = 0
    np.add.at(total, who, cents.astype(object))
    return total


__all__ = ["Aggregates", "PurchaseColumns", "aggregate"]
