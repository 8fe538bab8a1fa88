"""Purchases as columns, and the per-contact aggregates every feature is derived from. Pure.

A :class:`PurchaseColumns` holds one row per (purchase, contact): the contact's index in the
contact table, the amount in integer cents, the purchase's own calendar day and its currency.
:func:`aggregate` applies every purchase-related choice of ``[rfm]`` exactly as
:func:`segsync.core.features.summarise` does (it is the oracle the golden tests hold this to),
over whole columns: one ``bincount`` per figure instead of a Python step per purchase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from segsync.core.models import Purchase, Rejection
from segsync.core.record_checks import EARLIEST_ORDINAL, currency_reason, day_reason
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


@dataclass(frozen=True)
class LedgerRows:
    """The counted rows of an account's purchase ledger, as a state store hands them over.

    ``contact`` indexes ``contact_ids`` (the ledger's own contact dictionary, int32); ``cents``,
    ``day``, ``currency``/``currencies`` and ``label`` are as in :class:`PurchaseColumns`. Rows
    whose amount has no cents (not a finite number, or out of range) are not among them: they
    are ``odd``, as :class:`~segsync.core.models.Purchase` objects, for the core to judge one by one.
    """

    contact: np.ndarray
    contact_ids: Sequence[str]
    cents: np.ndarray
    day: np.ndarray
    currency: np.ndarray
    currencies: tuple[str, ...]
    label: Callable[[int], str]
    odd: Sequence[Purchase] = ()

    def __len__(self) -> int:
        return len(self.cents) + len(self.odd)

    def first_day(self) -> dt.date | None:
        """The earliest close day of any row (None for an empty ledger)."""
        days = [int(self.day.min())] if len(self.day) else []
        days += [p.closed_at.toordinal() for p in self.odd]
        return dt.date.fromordinal(min(days)) if days else None


class PurchaseLedger(Protocol):
    """An account's purchases as the engine hands them to compute: as columns (the product's
    path) or, for small tests and the object oracle, as :class:`Purchase` objects."""

    def rows(self) -> LedgerRows: ...

    def __iter__(self) -> Iterator[Purchase]: ...

    def __len__(self) -> int: ...


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct integers of ``values`` (sorted) and each value's index among them: by a
    count when the values are dense (CRM ids are), else by one sort."""
    if not len(values):
        return values, values.astype(np.int64)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < 4 * len(values) + (1 << 16):
        shifted = (values - lo).astype(np.int32)
        present = np.zeros(hi - lo + 1, bool)
        present[shifted] = True
        rank = np.cumsum(present, dtype=np.int32) - 1
        return np.flatnonzero(present) + lo, rank[shifted]
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1)


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
    cents, day, who = purchases.cents, purchases.day, purchases.contact
    # Masks are None where they select every row: min/max tell the common case (no refunds,
    # no odd dates, no other currency) without building a 10M-row mask per question.
    lowest = int(cents.min()) if len(cents) else 0
    bad_currency = _foreign(purchases, settings.currency)
    days_fine = not len(day) or (int(day.max()) <= today and int(day.min()) >= EARLIEST_ORDINAL)
    bad_day = None if days_fine else (day > today) | (day < EARLIEST_ORDINAL)
    rejected = _or_none(bad_currency, bad_day)
    rejections = []
    if rejected is not None:
        only_day = bad_day if bad_currency is None or bad_day is None else bad_day & ~bad_currency
        rejections = _rejections(purchases, bad_currency, only_day, settings.currency, as_of)
    keep = None if rejected is None else ~rejected
    if lowest > 0 or (lowest == 0 and settings.zero_amounts == "count"):
        order_like = keep
    else:
        order_like = _and(cents >= 0 if settings.zero_amounts == "count" else cents > 0, keep)
    window = settings.frequency_window_days
    in_window = _and(today - day <= window, keep) if window else keep
    counted = _and(order_like, in_window)
    if settings.refunds == "subtract" and lowest < 0:
        summed = _or(counted, _and(cents < 0, in_window))
    else:
        summed = counted
    orders = np.bincount(_pick(who, counted), minlength=contacts).astype(np.int64)
    revenue = _sum_by(_pick(who, summed), _pick(cents, summed), contacts)
    first = np.full(contacts, np.iinfo(np.int32).max, np.int32)
    last = np.full(contacts, np.iinfo(np.int32).min, np.int32)
    buyers, days = _pick(who, order_like), _pick(day, order_like)
    np.minimum.at(first, buyers, days)
    np.maximum.at(last, buyers, days)
    customer = last != np.iinfo(np.int32).min
    if not customer.all():  # refunds alone do not make a customer: nothing of theirs counts
        revenue = np.where(customer, revenue, 0).astype(revenue.dtype)
        orders[~customer] = 0
    return Aggregates(orders, revenue, first, last, customer), rejections


def _and(mask: np.ndarray | None, other: np.ndarray | None) -> np.ndarray | None:
    """Two row selections combined (None: every row); an all-True result becomes None."""
    out = (other if mask is None else mask) if mask is None or other is None else mask & other
    return None if out is None or out.all() else out


def _or_none(mask: np.ndarray | None, other: np.ndarray | None) -> np.ndarray | None:
    """Either selection (None: no row)."""
    if mask is None or other is None:
        return other if mask is None else mask
    return np.asarray(mask | other)


def _or(mask: np.ndarray | None, other: np.ndarray | None) -> np.ndarray | None:
    if mask is None or other is None:
        return None
    return np.asarray(mask | other)


def _pick(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return values if mask is None else values[mask]


def _foreign(purchases: PurchaseColumns, home: str) -> np.ndarray | None:
    """The rows in another currency (None: none)."""
    codes = [i for i, name in enumerate(purchases.currencies) if name and name.upper() != home]
    if not codes:
        return None
    found = np.isin(purchases.currency, np.asarray(codes, dtype=np.int16))
    return found if found.any() else None


def _rejections(
    purchases: PurchaseColumns,
    currency: np.ndarray | None,
    day: np.ndarray | None,
    home: str,
    as_of: dt.date,
) -> list[Rejection]:
    out: list[Rejection] = []
    rows = _or_none(currency, day)
    assert rows is not None
    for i in np.flatnonzero(rows).tolist():
        if currency is not None and currency[i]:
            reason = currency_reason(purchases.currencies[purchases.currency[i]], home)
        else:
            reason = day_reason(dt.date.fromordinal(int(purchases.day[i])), as_of)
        out.append(Rejection(kind="purchase", record_id=purchases.label(i), reason=reason))
    return out


def _sum_by(who: np.ndarray, cents: np.ndarray, contacts: int) -> np.ndarray:
    """Exact per-contact sums of cents: float64 bincount while every partial sum is an exact
    integer in a double, int64 while it cannot overflow, Python ints beyond."""
    if cents.dtype != object:
        largest = max(abs(int(cents.min())), abs(int(cents.max()))) if len(cents) else 0
        bound = largest * len(cents)
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


__all__ = ["Aggregates", "LedgerRows", "PurchaseColumns", "PurchaseLedger", "aggregate", "dense_codes"]
