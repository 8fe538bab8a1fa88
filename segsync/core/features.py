"""Per-contact purchase aggregates and the built-in features computed from them.

:func:`summarise` turns raw purchases into one :class:`~segsync.core.models.PurchaseSummary` per
contact, applying every purchase-related choice of ``[rfm]`` (currency, refunds, zero
amounts, frequency window) and rejecting what cannot be used. The feature functions below
are registered by :mod:`segsync.default_plugins.features`; they are pure functions of
``(contact, summary, as_of)``, like any plugin's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from segsync.core.catalog import FeatureFn, FeatureType
from segsync.core.models import Contact, Purchase, PurchaseSummary, Rejection
from segsync.core.record_checks import (
    EARLIEST_ORDINAL,
    MAX_AMOUNT,
    amount_reason,
    currency_reason,
    date_reason,
)
from segsync.errors import PluginError

if TYPE_CHECKING:
    from segsync.core.settings import RfmSettings

ZERO = Decimal(0)
#: The row of a contact ``summarise`` was told to leave out (shared: never written to).
_OUTSIDER: list[Any] = [0, ZERO, None, None, None, None, frozenset()]


def summarise(
    purchases: Iterable[Purchase],
    settings: RfmSettings,
    as_of: dt.date,
    *,
    contacts: Container[str] | None = None,
    skipped: list[Purchase] | None = None,
) -> tuple[dict[str, PurchaseSummary], list[Rejection]]:
    """Aggregate purchases per contact.

    * The same (purchase id, contact id) twice: the first is kept, the others are rejected.
    * A purchase whose ``currency`` is set and is not ``settings.currency`` is rejected: amounts
      in different currencies are never summed.
    * An amount that is not finite or beyond :data:`~segsync.core.record_checks.MAX_AMOUNT` is rejected.
    * Purchases closed after ``as_of`` are rejected (so a run for a past date is reproducible),
      and so are those closed before :data:`~segsync.core.record_checks.EARLIEST_PURCHASE`.
    * Negative amounts are refunds: subtracted from revenue (never counted as orders, never
      moving the last purchase date) or ignored, per ``settings.refunds``.
    * Zero amounts count as orders or are ignored, per ``settings.zero_amounts``.
    * With ``frequency_window_days``, only orders in the window count for orders and revenue;
      first/last purchase dates (and so recency) always use all history.

    A contact gets a summary when it has at least one order at any time; refunds alone do not
    make a customer.

    With ``contacts``, purchases of any other contact are left out (appended to ``skipped``
    when given, for the caller to judge): the check costs one lookup per contact, not per
    purchase.
    """
    checks = PurchaseChecks(settings, as_of)
    rejections: list[Rejection] = []
    # contact id -> [orders, revenue, first day, first datetime, last day, last datetime, ids].
    # One dict lookup per purchase serves dedupe (the contact's purchase ids) and aggregation;
    # plain lists and day ordinals, not objects and aware-datetime comparisons: this loop runs
    # once per purchase, millions of times.
    acc: dict[str, list[Any]] = {}
    for p in purchases:
        row = acc.get(p.contact_id)
        if row is None:
            outside = contacts is not None and p.contact_id not in contacts
            row = acc[p.contact_id] = _OUTSIDER if outside else [0, ZERO, None, None, None, None, {p.id}]
        elif row is not _OUTSIDER:
            ids = row[6]
            size = len(ids)
            ids.add(p.id)
            if len(ids) == size:
                dup = f"duplicate of purchase {p.id} for contact {p.contact_id}; the first copy is used"
                rejections.append(Rejection(kind="purchase", record_id=p.id, reason=dup))
                continue
        if row is _OUTSIDER:
            if skipped is not None:
                skipped.append(p)
            continue
        reason = checks.problem(p)
        if reason is not None:
            rejections.append(Rejection(kind="purchase", record_id=p.id, reason=reason))
            continue
        checks.add(row, p)
    summaries = {
        cid: PurchaseSummary.model_construct(
            orders=orders, revenue=revenue, first_purchase=first, last_purchase=last
        )
        for cid, (orders, revenue, day, first, _, last, _) in acc.items()
        if day is not None  # only refunds or ignored purchases (or an outsider): not a customer
    }
    return summaries, rejections


class PurchaseChecks:
    """Whether a purchase counts, and how it adds to its contact's row (see :func:`summarise`)."""

    def __init__(self, settings: RfmSettings, as_of: dt.date) -> None:
        self.home = settings.currency
        self.window = settings.frequency_window_days
        self.count_zero = settings.zero_amounts == "count"
        self.subtract_refunds = settings.refunds == "subtract"
        self.as_of = as_of
        self.today = as_of.toordinal()

    def problem(self, p: Purchase) -> str | None:
        """Why this purchase is rejected (another currency, an absurd amount or date), or None."""
        currency = p.currency
        if currency and currency != self.home and currency.upper() != self.home:
            return currency_reason(currency, self.home)
        amount = p.amount
        if not (amount.is_finite() and -MAX_AMOUNT <= amount <= MAX_AMOUNT):
            return amount_reason(amount)
        day = p.closed_at.toordinal()
        if day > self.today or day < EARLIEST_ORDINAL:
            return date_reason(p.closed_at, self.as_of)
        return None

    def add(self, row: list[Any], p: Purchase) -> None:
        amount, closed = p.amount, p.closed_at
        day = closed.toordinal()
        counts = not self.window or self.today - day <= self.window
        if amount <= ZERO:  # one Decimal-to-Decimal comparison on the common (positive) path
            if amount < ZERO:
                if self.subtract_refunds and counts:
                    row[1] += amount
                return
            if not self.count_zero:
                return
        if counts:
            row[0] += 1
            row[1] += amount
        first = row[2]
        if first is None:
            row[2], row[3], row[4], row[5] = day, closed, day, closed
            return
        if day <= first and (day < first or _utc(closed) < _utc(row[3])):
            row[2], row[3] = day, closed
        if day >= row[4] and (day > row[4] or _utc(closed) > _utc(row[5])):
            row[4], row[5] = day, closed


def _utc(moment: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC, so naive and aware ones compare instead of raising."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# -- built-in features -----------------------------------------------------------------------


def first_purchase(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> dt.date | None:
    return summary.first_purchase.date() if summary else None


def last_purchase(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> dt.date | None:
    return summary.last_purchase.date() if summary else None


def order_count(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> int:
    return summary.orders if summary else 0


def revenue(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> Decimal:
    return summary.revenue if summary else ZERO


def average_order(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> Decimal | None:
    return summary.revenue / summary.orders if summary and summary.orders else None


def days_since_last_purchase(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> int | None:
    return (as_of - summary.last_purchase.date()).days if summary else None


def days_since_first_purchase(
    contact: Contact, summary: PurchaseSummary | None, as_of: dt.date
) -> int | None:
    return (as_of - summary.first_purchase.date()).days if summary else None


def has_purchased(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> bool:
    return summary is not None


#: Features scored over the whole population of customers, so no per-contact function can
#: compute them; :func:`segsync.core.desired.compute` supplies their values to rules.
RFM_FEATURES: dict[str, tuple[FeatureType, str]] = {
    "rfm_r": ("number", "recency score, 1 (longest ago) to bins (most recent); none without purchases"),
    "rfm_f": ("number", "frequency score, 1 to bins; none without purchases"),
    "rfm_m": ("number", "monetary score, 1 to bins; none without purchases"),
    "rfm_score": ("string", 'the three scores as one code, e.g. "545"; none without purchases'),
}


def population_feature(name: str) -> FeatureFn:
    """The registered function of an RFM feature: refuses per-contact use, naming the way in."""

    def needs_population(contact: Contact, summary: PurchaseSummary | None, as_of: dt.date) -> Any:
        raise PluginError(
            f"feature {name!r} is scored across all customers; use segsync.core.desired.compute, "
            "which provides it to rules, instead of calling it per contact"
        )

    return needs_population


BUILTIN_FEATURES: tuple[tuple[str, FeatureFn, FeatureType, str], ...] = (
    ("first_purchase", first_purchase, "date", "date of the first order"),
    ("last_purchase", last_purchase, "date", "date of the latest order"),
    ("order_count", order_count, "number", "orders (in the frequency window, if set); 0 without purchases"),
    (
        "revenue",
        revenue,
        "number",
        "total of orders minus refunds (in the window, if set); 0 without purchases",
    ),
    ("average_order", average_order, "number", "revenue / orders; none without orders"),
    ("days_since_last_purchase", days_since_last_purchase, "number", "days from the latest order to as_of"),
    ("days_since_first_purchase", days_since_first_purchase, "number", "days from the first order to as_of"),
    ("has_purchased", has_purchased, "boolean", "true once the contact has at least one order"),
)
