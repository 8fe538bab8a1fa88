"""Segments over columns: the rule inputs, every set's members, in one pass per condition.

:func:`score` is the columnar heart of segsync: from a contact table and its
:class:`~segsync.core.columns.ledger.PurchaseColumns` to a :class:`Scored` (aggregates, R/F/M
scores, every set's assignment) without one Python object per record. Each rule condition
becomes one vectorised test over a whole column (see :mod:`segsync.core.columns.ops`);
``all``/``any``/``not`` combine the masks. An operator or feature without a columnar form
still works: it is asked once per distinct value, or once per contact, respectively.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from segsync.core.catalog import Catalog
from segsync.core.columns.column import Column, Frame, coded_column
from segsync.core.columns.ledger import Aggregates, PurchaseColumns, aggregate
from segsync.core.columns.scoring import score_columns
from segsync.core.features import RFM_FEATURES
from segsync.core.fields import _all_sets
from segsync.core.models import Contact, Rejection
from segsync.core.rules import INVALID, AllOf, AnyOf, Condition, NotOf, Rule, coerce
from segsync.core.segments import SegmentPack, SegmentSet
from segsync.core.settings import ScoringConfig


@dataclass(frozen=True)
class SetResult:
    """One set's outcome: ``masks[i]`` holds the contacts matching segment ``i``; for an
    exclusive set ``assigned`` is each contact's segment index (-1: none matched)."""

    set: SegmentSet
    masks: tuple[np.ndarray, ...]
    assigned: np.ndarray | None


@dataclass(frozen=True)
class Scored:
    """The columnar result for one contact table on ``as_of`` (contacts in table order)."""

    as_of: dt.date
    bins: int
    ids: Sequence[str]
    agg: Aggregates
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    sets: tuple[SetResult, ...]
    rejections: tuple[Rejection, ...]

    def codes(self) -> list[str | None]:
        """The RFM code per contact ("545"), None for contacts without purchases."""
        column = rfm_code_column(self)
        values = list(column.values)
        return [values[c] if c >= 0 else None for c in column.data.tolist()]


def score(
    ids: Sequence[str],
    purchases: PurchaseColumns,
    *,
    config: ScoringConfig,
    packs: Sequence[SegmentPack],
    registry: Catalog,
    as_of: dt.date,
    properties: Callable[[str], Sequence[str | None]] | None = None,
    contacts: Callable[[], Sequence[Contact]] | None = None,
) -> Scored:
    """Score the contacts ``ids`` (every one accepted) on their purchases, and segment them.

    ``properties(name)`` gives a contact property's raw CRM strings per contact, for rules
    that read properties; ``contacts()`` the contacts as objects, for plugin features that
    have no vector form. Without them, properties read as empty.
    """
    settings = config.rfm
    n = len(ids)
    agg, rejections = aggregate(purchases, n, settings, as_of)
    r, f, m = score_columns(agg, settings, as_of)
    frame = Frame(
        as_of=as_of,
        ids=ids,
        agg=agg,
        properties=properties or (lambda name: [None] * n),
        contacts=contacts or (lambda: [Contact(id=i) for i in ids]),
    )
    scored = Scored(as_of, settings.bins, ids, agg, r, f, m, (), tuple(rejections))
    sets = _all_sets(packs)
    used = frozenset().union(*(s.fields for s in sets))
    columns = _rule_inputs(used, frame, scored, config, registry)  # the scores are rule inputs
    return replace(scored, sets=tuple(_classify(s, columns, n, as_of) for s in sets))


def _rule_inputs(
    used: frozenset[str], frame: Frame, scored: Scored, config: ScoringConfig, registry: Catalog
) -> dict[str, Column]:
    """A column per field the rules read, in the same precedence as the object path."""
    n = len(frame.ids)
    out: dict[str, Column] = {}
    for name in sorted(used):
        if name in RFM_FEATURES:
            out[name] = _rfm_column(name, scored)
        elif name in registry.features:
            out[name] = _feature_column(name, frame, registry)
        elif name in config.properties:
            ptype = config.properties[name]
            raw = coded_column(frame.properties(name))
            out[name] = Column(
                "coded", raw.data, raw.present, values=tuple(coerce(v, ptype) for v in raw.values)
            )
        else:
            out[name] = Column("coded", np.full(n, -1, np.int64), np.zeros(n, bool))
    return out


def _feature_column(name: str, frame: Frame, registry: Catalog) -> Column:
    feature = registry.features[name]
    if feature.vector is not None:
        got = feature.vector(frame)
        return got if isinstance(got, Column) else coded_column(list(got))
    fn, as_of = feature.compute, frame.as_of
    return coded_column([fn(c, s, as_of) for c, s in zip(frame.contacts(), frame.summaries(), strict=True)])


def _rfm_column(name: str, scored: Scored) -> Column:
    if name == "rfm_score":
        return rfm_code_column(scored)
    data = {"rfm_r": scored.r, "rfm_f": scored.f, "rfm_m": scored.m}[name]
    return Column("int", data, scored.agg.customer)


def rfm_code_column(scored: Scored) -> Column:
    """The "545" codes, one string per distinct (R, F, M) combination."""
    b = scored.bins + 1
    combo = (scored.r * b + scored.f) * b + scored.m
    combo = np.where(scored.agg.customer, combo, -1)
    present = np.unique(combo[combo >= 0])
    lookup = np.full(b**3, -1, np.int64)
    lookup[present] = np.arange(len(present))
    codes = np.where(combo >= 0, lookup[np.maximum(combo, 0)], -1)
    sep = "-" if scored.bins > 9 else ""
    values = tuple(f"{c // (b * b)}{sep}{c // b % b}{sep}{c % b}" for c in present.tolist())
    return Column("coded", codes, codes >= 0, values=values)


def _classify(segment_set: SegmentSet, columns: Mapping[str, Column], n: int, as_of: dt.date) -> SetResult:
    if not segment_set.exclusive:
        masks = tuple(rule_mask(s.rule, columns, n, as_of) for s in segment_set.segments)
        return SetResult(segment_set, masks, None)
    assigned = np.full(n, -1, np.int64)
    for i, seg in enumerate(segment_set.segments):
        open_ = assigned < 0
        if not open_.any():
            break
        assigned[open_ & rule_mask(seg.rule, columns, n, as_of)] = i
    masks = tuple(assigned == i for i in range(len(segment_set.segments)))
    return SetResult(segment_set, masks, assigned)


def rule_mask(rule: Rule, columns: Mapping[str, Column], n: int, as_of: dt.date) -> np.ndarray:
    """The contacts ``rule`` matches, with the per-contact semantics of :func:`segsync.core.rules.bind`."""
    if isinstance(rule, Condition):
        return condition_mask(rule, columns[rule.field], as_of)
    if isinstance(rule, NotOf):
        return ~rule_mask(rule.child, columns, n, as_of)
    if isinstance(rule, AllOf):
        out = np.ones(n, bool)
        for child in rule.children:
            out &= rule_mask(child, columns, n, as_of)
        return out
    assert isinstance(rule, AnyOf)
    out = np.zeros(n, bool)
    for child in rule.children:
        out |= rule_mask(child, columns, n, as_of)
    return out


def condition_mask(cond: Condition, column: Column, as_of: dt.date) -> np.ndarray:
    """None satisfies nothing (but presence tests), INVALID nothing at all (rules module doc)."""
    if cond.vector is not None:
        got = cond.vector(column, cond.arg, as_of)
        if got is not None:
            mask = np.asarray(got, dtype=bool)
            return mask if cond.sees_none else mask & column.present
    codes, values = column.coded()
    test, arg = cond.test, cond.arg
    table = [
        v is not INVALID and (v is not None or cond.sees_none) and bool(test(v, arg, as_of)) for v in values
    ]
    table.append(cond.sees_none and bool(test(None, arg, as_of)))  # code -1: no value
    out: np.ndarray = np.asarray(table, dtype=bool)[codes]
    return out


__all__ = ["Scored", "SetResult", "condition_mask", "rfm_code_column", "rule_mask", "score"]
