"""From contacts and purchases to the desired CRM state: managed field values, lists, members.

:func:`compute` is the pure heart of segsync; the engine pulls, calls it, then plans the
difference against what the CRM holds. Same inputs and ``as_of`` → same :class:`Desired`,
and feeding ``Desired.values`` back as ``Contact.managed`` changes nothing (idempotence: the
previous-segment and segment-since fields are carried over from what the CRM already holds).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, TypeVar

from segsync.core.catalog import Catalog
from segsync.core.features import RFM_FEATURES, ZERO, summarise

# Re-exported: the specs of what a computation fills, kept next to compute() for its callers.
from segsync.core.fields import PREVIOUS_FIELD as PREVIOUS_FIELD
from segsync.core.fields import SINCE_FIELD as SINCE_FIELD
from segsync.core.fields import _all_sets
from segsync.core.fields import desired_fields as desired_fields
from segsync.core.fields import desired_lists as desired_lists
from segsync.core.fields import list_key as list_key
from segsync.core.fields import required_properties as required_properties
from segsync.core.fields import rfm_set as rfm_set
from segsync.core.models import (
    Contact,
    FieldSpec,
    FieldValue,
    ListSpec,
    Purchase,
    PurchaseSummary,
    Rejection,
)
from segsync.core.record_checks import accept_contacts, as_written, orphan_rejections
from segsync.core.rfm import RfmScores, score_population
from segsync.core.rules import PropertyType, Values, bind, coerce, parse_date, rule_fields
from segsync.core.segments import SegmentPack, SegmentSet
from segsync.core.settings import ScoringConfig

CENT = Decimal("0.01")
#: A set's memo of rule results is dropped once it holds this many distinct inputs: sets over
#: high-cardinality fields (dates, amounts) would only pay for keys that never repeat.
MEMO_LIMIT = 4096
T = TypeVar("T")


class Movement(NamedTuple):
    """A contact's segment in an exclusive set differs from what the CRM holds.

    A tuple, not a dataclass: a first sync creates one per contact.
    """

    contact_id: str
    set_key: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class SegmentStats:
    set_key: str
    segment_key: str
    name: str
    contacts: int
    orders: int
    revenue: Decimal
    #: share of all accepted contacts' revenue, 0..1 (0 when there is no revenue at all)
    revenue_share: float
    #: revenue / orders of the segment's contacts; None without orders
    average_order: Decimal | None


@dataclass(frozen=True)
class SetSummary:
    key: str
    label: str
    mode: str
    segments: tuple[SegmentStats, ...]
    #: contacts matching no segment (exclusive sets; 0 for independent ones)
    unmatched: int


@dataclass(frozen=True)
class Summary:
    """Figures for ``segsync report`` and the demo."""

    as_of: dt.date
    bins: int
    contacts: int
    customers: int
    revenue: Decimal
    rejected: int
    sets: tuple[SetSummary, ...]
    #: customers per (R, F) cell, every cell of the bins × bins grid present
    rfm_grid: dict[tuple[int, int], int]

    def segment(self, set_key: str, segment_key: str) -> SegmentStats:
        for s in self.sets:
            if s.key == set_key:
                for seg in s.segments:
                    if seg.segment_key == segment_key:
                        return seg
        raise KeyError(f"{set_key}.{segment_key}")


@dataclass(frozen=True)
class Desired:
    """What the CRM should hold after a sync."""

    as_of: dt.date
    #: every managed field, in a stable order
    fields: tuple[FieldSpec, ...]
    lists: tuple[ListSpec, ...]
    #: every managed field key for every accepted contact; None means empty
    values: dict[str, dict[str, FieldValue]]
    #: list key → members, for every list in ``lists``
    members: dict[str, frozenset[str]]
    #: exclusive set key → contact id → segment key (None: matched nothing)
    segments: dict[str, dict[str, str | None]]
    changes: tuple[Movement, ...]
    rejections: tuple[Rejection, ...]
    summary: Summary
    #: every set (independent ones too) → segment key → contacts matching it
    matched: dict[str, dict[str, frozenset[str]]] = dc_field(default_factory=dict)


# -- compute ---------------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return as_written(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_date(value)
    return None


def _memoised(fields: Sequence[str], fn: Callable[[Values], T]) -> Callable[[Values], T]:
    """``fn`` memoised on the values of ``fields`` (all it reads), for one run.

    Rules over scores, counts and dates see few distinct inputs across a population, so most
    contacts cost one dict lookup. Once the memo holds :data:`MEMO_LIMIT` inputs the fields
    are evidently high-cardinality (amounts): it is dropped and ``fn`` runs directly.
    """
    memo: dict[Any, T] | None = {}
    names = tuple(fields)
    only = names[0] if len(names) == 1 else None

    def call(values: Values) -> T:
        nonlocal memo
        if memo is None:
            return fn(values)
        key = values.get(only) if only is not None else tuple([values.get(f) for f in names])
        try:
            return memo[key]
        except KeyError:
            found = memo[key] = fn(values)
            if len(memo) >= MEMO_LIMIT:
                memo = None
            return found

    return call


class _Classifier:
    """Finds the segments of one set a contact's values match: the first one for an exclusive
    set (memoised as a whole), every one for an independent set (memoised per segment)."""

    def __init__(self, segment_set: SegmentSet, as_of: dt.date) -> None:
        self.set = segment_set
        #: the managed field of an exclusive set, None for an independent one
        self.field = segment_set.field if segment_set.exclusive else None
        self.options = frozenset(s.key for s in segment_set.segments)
        self.members: dict[str, set[str]] = {s.key: set() for s in segment_set.segments}
        #: segment → [orders, revenue] of its customers, summed while classifying
        self.totals: dict[str, list[Any]] = {s.key: [0, ZERO] for s in segment_set.segments}
        #: exclusive sets: contact → segment key (None: matched nothing)
        self.assigned: dict[str, str | None] = {}
        tests = [(s.key, bind(s.rule, as_of)) for s in segment_set.segments]
        if segment_set.exclusive:

            def first(values: Values) -> tuple[str, ...]:
                for key, test in tests:
                    if test(values):
                        return (key,)
                return ()

            self.matches = _memoised(sorted(segment_set.fields), first)
        else:
            each = [
                (s.key, _memoised(sorted(rule_fields(s.rule)), test) if rule_fields(s.rule) else test)
                for s, (_, test) in zip(segment_set.segments, tests, strict=True)
            ]
            self.matches = lambda values: tuple([key for key, test in each if test(values)])

    def classify(
        self, contact: Contact, summary: PurchaseSummary | None, inputs: Values, row: dict[str, FieldValue]
    ) -> tuple[str | None, str | None] | None:
        """Add the contact to every segment it matches (with its orders and revenue). For an
        exclusive set, also write its segment into ``row`` and return (old, new)."""
        keys = self.matches(inputs)
        for k in keys:
            self.members[k].add(contact.id)
            if summary is not None:
                acc = self.totals[k]
                acc[0] += summary.orders
                acc[1] += summary.revenue
        if self.field is None:
            return None
        new = keys[0] if keys else None
        self.assigned[contact.id] = row[self.field] = new
        return _text(contact.managed.get(self.field)), new


def compute(
    contacts: Sequence[Contact],
    purchases: Sequence[Purchase],
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> Desired:
    """The desired state for these contacts and purchases on ``as_of``.

    ``as_of`` is the run's reference date as the caller resolved it (``segsync`` takes
    ``--as-of``, else ``[rfm] as_of``, else today: :func:`segsync.project.config.effective_as_of`).

    Contacts without a usable email or seen twice are rejected and get no values (the
    purchases of a rejected contact are rejected with it: :mod:`segsync.core.record_checks`).
    Contacts without purchases get empty RFM and purchase fields and the segment whose rule
    matches them (the standard map's "No purchase yet").
    """
    with _gc_paused():
        return _compute(contacts, purchases, config=config, packs=packs, registry=registry, as_of=as_of)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of one compute.

    compute allocates millions of short-lived, acyclic objects on top of a heap that holds every
    pulled contact and purchase; each full collection walks that whole heap and together they
    cost about a third of the run. Reference counting still frees every acyclic object at once,
    and a cycle a plugin's feature might create is collected after the run. The previous state
    is restored, whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compute(
    contacts: Sequence[Contact],
    purchases: Sequence[Purchase],
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
) -> Desired:
    settings = config.rfm
    accepted, pulled, rejections = accept_contacts(contacts)
    others: list[Purchase] = []
    summaries, purchase_rejections = summarise(
        purchases, settings, as_of, contacts={c.id for c in accepted}, skipped=others
    )
    rejections += purchase_rejections
    rejections += orphan_rejections(((p.id, p.contact_id) for p in others), pulled)
    scores = score_population(summaries, settings, as_of)
    sets = _all_sets(packs)
    inputs = _RuleInputs(frozenset().union(*(s.fields for s in sets)), registry, config, as_of)
    classifiers = [_Classifier(s, as_of) for s in sets]
    primary = rfm_set(packs)
    fields = desired_fields(config, packs)
    empty_row: dict[str, FieldValue] = dict.fromkeys(f.key for f in fields)
    values: dict[str, dict[str, FieldValue]] = {}
    changes: list[Movement] = []
    for contact in accepted:
        summary = summaries.get(contact.id)
        sc = scores.get(contact.id)
        code = sc.code(settings.bins) if sc is not None else None
        row = dict(empty_row)
        if summary is not None:
            _fill_purchase_values(row, summary, sc, code, as_of, settings.write_recency_days)
        known = inputs.of(contact, summary, sc, code)
        for clf in classifiers:
            segment = clf.classify(contact, summary, known, row)
            if segment is None:
                continue  # an independent set: members only
            old, new = segment
            if old != new:
                changes.append(Movement(contact.id, clf.set.key, old, new))
            if clf.set is primary:
                _carry_history(row, contact.managed, old, new, as_of, clf.options)
        values[contact.id] = row
    return _assemble(
        packs, classifiers, fields, values, changes, rejections, summaries, scores, as_of, settings.bins
    )


class _RuleInputs:
    """What a contact's rules read: plugin features, typed properties, and its RFM scores."""

    def __init__(
        self, used: frozenset[str], registry: Catalog, config: ScoringConfig, as_of: dt.date
    ) -> None:
        self.as_of = as_of
        self.features = [
            (n, registry.features[n].compute)
            for n in sorted(used)
            if n in registry.features and n not in RFM_FEATURES
        ]
        self.props: list[tuple[str, PropertyType]] = [
            (n, config.properties[n])
            for n in sorted(used)
            if n not in registry.features and n in config.properties
        ]
        self.rfm = any(n in used for n in RFM_FEATURES)

    def of(
        self, contact: Contact, summary: PurchaseSummary | None, sc: RfmScores | None, code: str | None
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {name: fn(contact, summary, self.as_of) for name, fn in self.features}
        for name, ptype in self.props:
            inputs[name] = coerce(contact_property(contact, name), ptype)
        if self.rfm:
            inputs.update(_rfm_inputs(sc, code))
        return inputs


def contact_property(contact: Contact, name: str) -> str | None:
    """A contact property's raw CRM string as rules see it (``email`` is the contact's own)."""
    raw = contact.properties.get(name)
    return contact.email if raw is None and name == "email" else raw


def _assemble(
    packs: Sequence[SegmentPack],
    classifiers: Sequence[_Classifier],
    fields: tuple[FieldSpec, ...],
    values: dict[str, dict[str, FieldValue]],
    changes: list[Movement],
    rejections: list[Rejection],
    summaries: Mapping[str, PurchaseSummary],
    scores: Mapping[str, RfmScores],
    as_of: dt.date,
    bins: int,
) -> Desired:
    """The classifiers' members and totals as lists, segments and the run's summary figures."""
    matched = {c.set.key: {k: frozenset(ids) for k, ids in c.members.items()} for c in classifiers}
    totals = {c.set.key: c.totals for c in classifiers}
    exclusive_of = {c.set.key: c.assigned for c in classifiers if c.field is not None}
    lists = desired_lists(packs)
    members = {spec.key: matched[spec.key.partition(".")[0]][spec.key.partition(".")[2]] for spec in lists}
    figures = _summarise_sets(
        [c.set for c in classifiers],
        matched,
        totals,
        exclusive_of,
        summaries,
        scores,
        as_of,
        bins,
        len(values),
        len(rejections),
    )
    return Desired(
        as_of=as_of,
        fields=fields,
        lists=lists,
        values=values,
        members=members,
        segments=exclusive_of,
        changes=tuple(changes),
        rejections=tuple(rejections),
        summary=figures,
        matched=matched,
    )


def _rfm_inputs(sc: RfmScores | None, code: str | None) -> dict[str, Any]:
    if sc is None:
        return dict.fromkeys(RFM_FEATURES)
    return {"rfm_r": sc.r, "rfm_f": sc.f, "rfm_m": sc.m, "rfm_score": code}


def _fill_purchase_values(
    row: dict[str, FieldValue],
    summary: PurchaseSummary,
    sc: RfmScores | None,
    code: str | None,
    as_of: dt.date,
    recency: bool,
) -> None:
    row["segsync_order_count"] = summary.orders
    row["segsync_revenue"] = _money(summary.revenue)
    row["segsync_average_order"] = _money(summary.revenue / summary.orders) if summary.orders else None
    row["segsync_first_purchase"] = summary.first_purchase.date()
    row["segsync_last_purchase"] = last = summary.last_purchase.date()
    if recency:
        row["segsync_recency_days"] = (as_of - last).days
    if sc is not None:
        row["segsync_rfm_r_score"] = sc.r
        row["segsync_rfm_f_score"] = sc.f
        row["segsync_rfm_m_score"] = sc.m
        row["segsync_rfm_score"] = code


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _carry_history(
    row: dict[str, FieldValue],
    managed: Mapping[str, FieldValue],
    old: str | None,
    new: str | None,
    as_of: dt.date,
    options: frozenset[str],
) -> None:
    """Previous segment and since-date: moved → (old, as_of); stayed → keep what the CRM holds."""
    if old != new:
        previous, since = old, (as_of if new is not None else None)
    else:
        previous = _text(managed.get(PREVIOUS_FIELD))
        since = _as_date(managed.get(SINCE_FIELD)) or (as_of if new is not None else None)
    # A segment removed from the pack is no longer an option of the enumeration.
    row[PREVIOUS_FIELD] = previous if previous in options else None
    row[SINCE_FIELD] = since


def _summarise_sets(
    sets: Sequence[SegmentSet],
    matched: Mapping[str, Mapping[str, frozenset[str]]],
    totals: Mapping[str, Mapping[str, list[Any]]],
    exclusive_of: Mapping[str, Mapping[str, str | None]],
    summaries: Mapping[str, PurchaseSummary],
    scores: Mapping[str, RfmScores],
    as_of: dt.date,
    bins: int,
    contacts: int,
    rejected: int,
) -> Summary:
    total = sum((s.revenue for s in summaries.values()), ZERO)
    out: list[SetSummary] = []
    for s in sets:
        stats: list[SegmentStats] = []
        for seg in s.segments:
            orders, revenue = totals[s.key][seg.key]
            stats.append(
                SegmentStats(
                    set_key=s.key,
                    segment_key=seg.key,
                    name=seg.name,
                    contacts=len(matched[s.key][seg.key]),
                    orders=orders,
                    revenue=_money(revenue),
                    revenue_share=float(revenue / total) if total else 0.0,
                    average_order=_money(revenue / orders) if orders else None,
                )
            )
        unmatched = sum(1 for v in exclusive_of.get(s.key, {}).values() if v is None)
        out.append(SetSummary(s.key, s.label, s.mode, tuple(stats), unmatched))
    grid = {(r, f): 0 for r in range(1, bins + 1) for f in range(1, bins + 1)}
    for sc in scores.values():
        grid[(sc.r, sc.f)] += 1
    return Summary(
        as_of=as_of,
        bins=bins,
        contacts=contacts,
        customers=len(summaries),
        revenue=_money(total),
        rejected=rejected,
        sets=tuple(out),
        rfm_grid=grid,
    )
