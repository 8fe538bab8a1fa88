"""The columnar compute behind the object interface the engine uses today.

:func:`compute` takes the same pulled :class:`~segsync.core.models.Contact` and
:class:`~segsync.core.models.Purchase` objects as :func:`segsync.core.desired.compute` and
returns the same :class:`~segsync.core.desired.Desired` (the golden tests compare the two on
every contact, field, list and rejection), but scores and segments over columns: the objects
are read once into the ledger's columns, and Python work per contact is only building the row
of values to diff against the CRM.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal

import numpy as np

from segsync.core.catalog import Catalog
from segsync.core.columns.compute import Scored, SetResult, score
from segsync.core.columns.ledger import LedgerRows, PurchaseColumns
from segsync.core.desired import (
    Desired,
    Movement,
    SegmentStats,
    SetSummary,
    Summary,
    _carry_history,
    _gc_paused,
    _money,
    _text,
    contact_property,
)
from segsync.core.features import PurchaseChecks
from segsync.core.fields import desired_fields, desired_lists, rfm_set
from segsync.core.models import Contact, FieldValue, Purchase, Rejection
from segsync.core.record_checks import accept_contacts, orphan_rejections, to_cents
from segsync.core.segments import SegmentPack
from segsync.core.settings import RfmSettings, ScoringConfig

#: What compute takes of the purchases: the accepted contacts' columns, the rows rejected, and
#: the (purchase, contact) pairs of every other contact.
Taken = tuple[PurchaseColumns, list[Rejection], list[tuple[str, str]]]


def compute(
    contacts: Sequence[Contact],
    purchases: Sequence[Purchase],
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> Desired:
    """:func:`segsync.core.desired.compute`, over columns. Amounts are kept to the cent, as the
    ledger keeps them (rounded half up, per purchase)."""

    def columns(
        accepted: Sequence[Contact],
    ) -> tuple[PurchaseColumns, list[Rejection], list[tuple[str, str]]]:
        cols, rejected, others = to_columns(accepted, purchases, config.rfm, as_of)
        return cols, rejected, [(p.id, p.contact_id) for p in others]

    return _compute(contacts, columns, config=config, packs=packs, registry=registry, as_of=as_of)


def compute_rows(
    contacts: Sequence[Contact],
    ledger: LedgerRows,
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> Desired:
    """:func:`compute` over a ledger's rows as a state store keeps them (the engine's path):
    no :class:`Purchase` object is made but for the odd rows."""

    def columns(
        accepted: Sequence[Contact],
    ) -> tuple[PurchaseColumns, list[Rejection], list[tuple[str, str]]]:
        return ledger_columns(accepted, ledger, config.rfm, as_of)

    return _compute(contacts, columns, config=config, packs=packs, registry=registry, as_of=as_of)


def _compute(
    contacts: Sequence[Contact],
    columns: Callable[[Sequence[Contact]], Taken],
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> Desired:
    """Accept the contacts, take the purchases of the accepted ones as ``columns``, score them
    and build the :class:`Desired`, with every rejection (the others' purchases are orphans)."""
    with _gc_paused():  # the rows of values are millions of small acyclic objects
        accepted, pulled, rejections = accept_contacts(contacts)
        purchase_columns, purchase_rejections, others = columns(accepted)
        rejections += purchase_rejections

        def prop(name: str) -> list[str | None]:
            return [contact_property(c, name) for c in accepted]

        scored = score(
            [c.id for c in accepted],
            purchase_columns,
            config=config,
            packs=packs,
            registry=registry,
            as_of=as_of,
            properties=prop,
            contacts=lambda: accepted,
        )
        rejections += scored.rejections
        rejections += orphan_rejections(others, pulled)
        return to_desired(scored, accepted, rejections, config=config, packs=packs)


def ledger_columns(
    accepted: Sequence[Contact], ledger: LedgerRows, settings: RfmSettings, as_of: dt.date
) -> tuple[PurchaseColumns, list[Rejection], list[tuple[str, str]]]:
    """The ledger rows of ``accepted`` contacts as columns (currency and day are judged by the
    scoring, as for an export); the odd rows' rejections; the ``(purchase, contact)`` pairs of
    any other contact, for the caller to judge."""
    index = {c.id: i for i, c in enumerate(accepted)}
    remap = np.fromiter((index.get(c, -1) for c in ledger.contact_ids), np.int32, len(ledger.contact_ids))
    who = remap[ledger.contact] if len(remap) else np.zeros(0, np.int32)
    mine = who >= 0
    kept = None if mine.all() else np.flatnonzero(mine)
    others = (
        []
        if kept is None
        else [(ledger.label(int(i)), ledger.contact_ids[ledger.contact[i]]) for i in np.flatnonzero(~mine)]
    )
    checks = PurchaseChecks(settings, as_of)
    rejections: list[Rejection] = []
    for p in ledger.odd:
        if p.contact_id not in index:
            others.append((p.id, p.contact_id))
            continue
        reason = checks.problem(p)
        assert reason is not None, "a row without cents has an amount the checks refuse"
        rejections.append(Rejection(kind="purchase", record_id=p.id, reason=reason))
    if kept is None:
        columns = PurchaseColumns(
            who, ledger.cents, ledger.day, ledger.currency, ledger.currencies, ledger.label
        )
    else:
        rows = kept

        def label(i: int) -> str:
            return ledger.label(int(rows[i]))

        columns = PurchaseColumns(
            who[kept], ledger.cents[kept], ledger.day[kept], ledger.currency[kept], ledger.currencies, label
        )
    return columns, rejections, others


def to_columns(
    accepted: Sequence[Contact], purchases: Sequence[Purchase], settings: RfmSettings, as_of: dt.date
) -> tuple[PurchaseColumns, list[Rejection], list[Purchase]]:
    """The purchases of ``accepted`` contacts as columns; the rejected ones (duplicates, and
    what :class:`~segsync.core.features.PurchaseChecks` refuses, in its order); the purchases of
    any other contact, for the caller to judge."""
    checks = PurchaseChecks(settings, as_of)
    index = {c.id: i for i, c in enumerate(accepted)}
    seen: set[tuple[int, str]] = set()
    who: list[int] = []
    cents: list[int] = []
    days: list[int] = []
    labels: list[str] = []
    rejections: list[Rejection] = []
    others: list[Purchase] = []
    for p in purchases:
        i = index.get(p.contact_id)
        if i is None:
            others.append(p)
            continue
        key = (i, p.id)
        if key in seen:
            dup = f"duplicate of purchase {p.id} for contact {p.contact_id}; the first copy is used"
            rejections.append(Rejection(kind="purchase", record_id=p.id, reason=dup))
            continue
        seen.add(key)
        reason = checks.problem(p)
        if reason is not None:
            rejections.append(Rejection(kind="purchase", record_id=p.id, reason=reason))
            continue
        who.append(i)
        cents.append(to_cents(p.amount))
        days.append(p.closed_at.toordinal())
        labels.append(p.id)
    columns = PurchaseColumns.of(who, cents, days, label=labels.__getitem__)
    return columns, rejections, others


def to_desired(
    scored: Scored,
    accepted: Sequence[Contact],
    rejections: list[Rejection],
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
) -> Desired:
    """The :class:`Desired` of a columnar result: a row of values per contact, with the
    previous-segment history carried from what each contact's CRM record holds."""
    fields = desired_fields(config, packs)
    primary = rfm_set(packs)
    rows = _purchase_rows(scored, tuple(f.key for f in fields), config.rfm.write_recency_days)
    exclusive = [s for s in scored.sets if s.assigned is not None]
    keys = [[seg.key for seg in s.set.segments] for s in exclusive]
    options = [frozenset(k) for k in keys]
    assigned = [s.assigned.tolist() for s in exclusive if s.assigned is not None]
    values: dict[str, dict[str, FieldValue]] = {}
    changes: list[Movement] = []
    segments: dict[str, dict[str, str | None]] = {s.set.key: {} for s in exclusive}
    for i, contact in enumerate(accepted):
        row = rows[i]
        for j, result in enumerate(exclusive):
            code = assigned[j][i]
            new = keys[j][code] if code >= 0 else None
            field = result.set.field
            assert field is not None
            segments[result.set.key][contact.id] = row[field] = new
            old = _text(contact.managed.get(field))
            if old != new:
                changes.append(Movement(contact.id, result.set.key, old, new))
            if result.set is primary:
                _carry_history(row, contact.managed, old, new, scored.as_of, options[j])
        values[contact.id] = row
    matched = _matched(scored)
    lists = desired_lists(packs)
    members = {spec.key: matched[spec.key.partition(".")[0]][spec.key.partition(".")[2]] for spec in lists}
    return Desired(
        as_of=scored.as_of,
        fields=fields,
        lists=lists,
        values=values,
        members=members,
        segments=segments,
        changes=tuple(changes),
        rejections=tuple(rejections),
        summary=summary(scored, len(values), len(rejections)),
        matched=matched,
    )


def _purchase_rows(scored: Scored, keys: tuple[str, ...], recency: bool) -> list[dict[str, FieldValue]]:
    """Every contact's row: empty for prospects, the purchase and score fields for customers."""
    agg = scored.agg
    empty: dict[str, FieldValue] = dict.fromkeys(keys)
    rows = [dict(empty) for _ in range(len(agg))]
    who = np.flatnonzero(agg.customer).tolist()
    if not who:
        return rows
    dates: dict[int, dt.date] = {}
    codes = scored.codes()
    today = scored.as_of.toordinal()
    for i, orders, cents, first, last, r, f, m in zip(
        who,
        agg.orders[who].tolist(),
        agg.revenue[who].tolist(),
        agg.first[who].tolist(),
        agg.last[who].tolist(),
        scored.r[who].tolist(),
        scored.f[who].tolist(),
        scored.m[who].tolist(),
        strict=True,
    ):
        row = rows[i]
        revenue = Decimal(cents).scaleb(-2)
        row["segsync_order_count"] = orders
        row["segsync_revenue"] = _money(revenue)
        row["segsync_average_order"] = _money(revenue / orders) if orders else None
        row["segsync_first_purchase"] = dates.get(first) or dates.setdefault(
            first, dt.date.fromordinal(first)
        )
        row["segsync_last_purchase"] = dates.get(last) or dates.setdefault(last, dt.date.fromordinal(last))
        if recency:
            row["segsync_recency_days"] = today - last
        row["segsync_rfm_r_score"] = r
        row["segsync_rfm_f_score"] = f
        row["segsync_rfm_m_score"] = m
        row["segsync_rfm_score"] = codes[i]
    return rows


def _matched(scored: Scored) -> dict[str, dict[str, frozenset[str]]]:
    ids = np.asarray(scored.ids, dtype=object)
    return {
        s.set.key: {
            seg.key: frozenset(ids[mask].tolist()) for seg, mask in zip(s.set.segments, s.masks, strict=True)
        }
        for s in scored.sets
    }


def summary(scored: Scored, contacts: int, rejected: int) -> Summary:
    """The run's figures (``segsync report``, the demo), from the columns."""
    agg = scored.agg
    total = _decimal_sum(agg.revenue[agg.customer])
    sets = tuple(_set_summary(s, scored, total) for s in scored.sets)
    bins = scored.bins
    grid = {(r, f): 0 for r in range(1, bins + 1) for f in range(1, bins + 1)}
    cells = np.bincount(
        (scored.r[agg.customer] - 1) * bins + (scored.f[agg.customer] - 1), minlength=bins * bins
    ).tolist()
    for cell, count in enumerate(cells):
        grid[(cell // bins + 1, cell % bins + 1)] = count
    return Summary(
        as_of=scored.as_of,
        bins=bins,
        contacts=contacts,
        customers=int(agg.customer.sum()),
        revenue=_money(total),
        rejected=rejected,
        sets=sets,
        rfm_grid=grid,
    )


def _set_summary(result: SetResult, scored: Scored, total: Decimal) -> SetSummary:
    agg = scored.agg
    stats = []
    for seg, mask in zip(result.set.segments, result.masks, strict=True):
        orders = int(agg.orders[mask].sum())
        revenue = _decimal_sum(agg.revenue[mask])
        stats.append(
            SegmentStats(
                set_key=result.set.key,
                segment_key=seg.key,
                name=seg.name,
                contacts=int(mask.sum()),
                orders=orders,
                revenue=_money(revenue),
                revenue_share=float(revenue / total) if total else 0.0,
                average_order=_money(revenue / orders) if orders else None,
            )
        )
    unmatched = int((result.assigned < 0).sum()) if result.assigned is not None else 0
    s = result.set
    return SetSummary(s.key, s.label, s.mode, tuple(stats), unmatched)


def _decimal_sum(cents: np.ndarray) -> Decimal:
    """Exact: a Python-int sum of cents (int64 sums of many large ones could overflow)."""
    if cents.dtype != object and len(cents) and int(np.abs(cents).max()) * len(cents) < 2**62:
        return Decimal(int(cents.sum())).scaleb(-2)
    return Decimal(sum(cents.tolist())).scaleb(-2)


__all__ = ["compute", "compute_rows", "ledger_columns", "summary", "to_columns", "to_desired"]
