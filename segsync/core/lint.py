"""Lint segment packs before anything is written: gaps, shadowed segments, contradictions.

Rules are arbitrary boolean trees, so the linter checks them on **representative contact
states** rather than by algebra:

* RFM scores: every cell of the score grid the set reads (``bins`` per dimension: the 25 R×F
  cells of the standard map, all ``bins³`` cells when ``rfm_m``/``rfm_score`` is read), plus the
  no-purchase state, where every purchase feature has its no-purchase value and scores are empty;
* any other field: every constant its conditions use, the values just below and above the
  smallest and largest, the midpoints between neighbours (so every interval the constants cut
  the line into is represented), an unrelated value for strings, and "empty" where a field can
  be empty;
* the cartesian product of those, capped: beyond ``cap`` states a deterministic sample is
  checked and "never matches" findings become warnings, since a sample can miss a state.

Findings, per set:

* exclusive sets: a state no segment matches is a **gap** (an error unless ``allow_gaps``); a
  segment that matches some state but never wins there is **shadowed** by earlier ones (error);
  two segments matching the same state **overlap** (warning: the first one wins);
* every set: a segment matching no state at all **can never match** (error).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from segsync.core.catalog import Catalog, FeatureType
from segsync.core.features import BUILTIN_FEATURES, RFM_FEATURES
from segsync.core.models import Contact
from segsync.core.rfm import RfmScores
from segsync.core.rules import PropertyType, bind, iter_conditions
from segsync.core.segments import SegmentPack, SegmentSet

LINT_AS_OF = dt.date(2000, 1, 1)
DEFAULT_CAP = 20_000
_PURCHASE_FEATURES = frozenset(name for name, *_ in BUILTIN_FEATURES)
#: Purchase features that can be empty even for a customer (no order inside the window).
_NULLABLE_WHEN_BOUGHT = frozenset({"average_order"})
_RFM_DIMS = ("rfm_r", "rfm_f", "rfm_m")
_LABEL = {"rfm_r": "R", "rfm_f": "F", "rfm_m": "M"}
_OTHER = "\x00other"  # a string no rule compares with
_POINT_TYPES: dict[str, type] = {"number": Decimal, "date": dt.date, "string": str}


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def lint(
    packs: Sequence[SegmentPack],
    registry: Catalog,
    properties: Mapping[str, PropertyType],
    *,
    bins: int = 5,
    as_of: dt.date = LINT_AS_OF,
    cap: int = DEFAULT_CAP,
) -> list[Finding]:
    findings: list[Finding] = []
    for pack in packs:
        for segment_set in pack.sets:
            findings += _lint_set(segment_set, registry, properties, bins, as_of, cap)
    return findings


# -- states ----------------------------------------------------------------------------------


def _constants(segment_set: SegmentSet) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {}
    for segment in segment_set.segments:
        for cond in iter_conditions(segment.rule):
            out.setdefault(cond.field, []).append((cond.op, cond.arg))
    return out


def _points(args: list[tuple[str, Any]], ftype: str, as_of: dt.date) -> list[Any]:
    """Every constant the conditions on one field use, as values of the field's type."""
    points: list[Any] = []
    for _op, arg in args:
        values = arg if isinstance(arg, tuple) else (arg,)
        for v in values:
            if ftype == "date" and isinstance(v, int) and not isinstance(v, bool):
                points.append(as_of - dt.timedelta(days=v))  # within_last_days / older_than_days
            elif isinstance(v, _POINT_TYPES.get(ftype, ())):
                points.append(v)
    return sorted(set(points))


def _candidates(ftype: str, args: list[tuple[str, Any]], as_of: dt.date, nullable: bool) -> list[Any]:
    points = _points(args, ftype, as_of)
    out: list[Any]
    if ftype == "boolean":
        out = [True, False]
    elif ftype == "string":
        out = [*points, _OTHER]
    elif ftype == "number":
        if not points:
            out = [Decimal(1)]
        else:
            mids = [(a + b) / 2 for a, b in itertools.pairwise(points)]
            out = sorted({points[0] - 1, *points, *mids, points[-1] + 1})
    else:
        day = dt.timedelta(days=1)
        if not points:
            out = [as_of]
        else:
            around = {p + d * day for p in points for d in (-1, 0, 1)}
            out = sorted(around | {as_of})
    return [*out, None] if nullable else out


@dataclass(frozen=True)
class _Space:
    """The states of one set: ``purchased`` dimensions × values, plus no-purchase states."""

    rfm_dims: tuple[str, ...]
    bought: tuple[tuple[str, list[Any]], ...]  # purchase-feature dimensions, customers only
    common: tuple[tuple[str, list[Any]], ...]  # properties and plugin features, every state
    no_purchase: Mapping[str, Any]
    bins: int

    def sizes(self) -> tuple[int, int]:
        common = math.prod(len(v) for _, v in self.common)
        bought = self.bins ** len(self.rfm_dims) * math.prod(len(v) for _, v in self.bought)
        return common, bought

    def total(self) -> int:
        common, bought = self.sizes()
        return common * (bought + 1)

    def state(self, index: int) -> dict[str, Any]:
        """Decode state ``index`` (mixed radix): the no-purchase states come first."""
        common_n, bought_n = self.sizes()
        index, rest = divmod(index, common_n)
        values: dict[str, Any] = {}
        for name, options in self.common:
            rest, i = divmod(rest, len(options))
            values[name] = options[i]
        if index == 0:
            values.update(self.no_purchase)
            return values
        rest = index - 1
        for name, options in self.bought:
            rest, i = divmod(rest, len(options))
            values[name] = options[i]
        scores = {}
        for dim in _RFM_DIMS:
            if dim in self.rfm_dims:
                rest, i = divmod(rest, self.bins)
                scores[dim] = i + 1
        values.update(scores)
        values["has_purchased"] = True
        if len(scores) == 3:
            values["rfm_score"] = RfmScores(scores["rfm_r"], scores["rfm_f"], scores["rfm_m"]).code(self.bins)
        return values


def _space(
    segment_set: SegmentSet,
    registry: Catalog,
    properties: Mapping[str, PropertyType],
    bins: int,
    as_of: dt.date,
) -> _Space:
    fields = segment_set.fields
    consts = _constants(segment_set)
    rfm_dims: tuple[str, ...] = (
        _RFM_DIMS if "rfm_score" in fields else tuple(d for d in _RFM_DIMS if d in fields)
    )
    blank = Contact(id="lint")
    # has_purchased is always set, so states describe themselves ("a contact without purchases").
    no_purchase: dict[str, Any] = {
        **dict.fromkeys(n for n in fields if n in RFM_FEATURES),
        "has_purchased": False,
    }
    bought: list[tuple[str, list[Any]]] = []
    common: list[tuple[str, list[Any]]] = []
    for name in sorted(fields):
        if name in RFM_FEATURES:
            continue
        feature = registry.features.get(name)
        ftype: FeatureType | None = feature.type if feature else properties.get(name)
        assert ftype is not None  # packs only load with known fields
        args = consts.get(name, [])
        if feature is not None and name in _PURCHASE_FEATURES:
            if name == "has_purchased":
                continue  # False above, True in every customer state (set when decoding)
            no_purchase[name] = feature.compute(blank, None, as_of)
            bought.append((name, _candidates(ftype, args, as_of, name in _NULLABLE_WHEN_BOUGHT)))
        else:
            common.append((name, _candidates(ftype, args, as_of, nullable=True)))
    return _Space(rfm_dims, tuple(bought), tuple(common), no_purchase, bins)


def _indexes(total: int, cap: int) -> Iterator[int]:
    if total <= cap:
        yield from range(total)
    else:
        # A fixed seed: the same packs always get the same findings.
        yield from sorted(random.Random(0).sample(range(total), cap))


def describe(state: Mapping[str, Any], as_of: dt.date = LINT_AS_OF) -> str:
    """A contact state in words: ``R=3 F=4``, ``a contact without purchases, country=US``."""
    parts: list[str] = []
    if state.get("has_purchased") is False:
        parts.append("a contact without purchases")
    scores = [f"{_LABEL[d]}={state[d]}" for d in _RFM_DIMS if state.get(d) is not None]
    if scores:
        parts.append(" ".join(scores))
    elif state.get("has_purchased") is True:
        parts.append("a customer")
    for name in sorted(state):
        if name in RFM_FEATURES or name == "has_purchased":
            continue
        value = state[name]
        if state.get("has_purchased") is False and name in _PURCHASE_FEATURES:
            continue
        if value is None:
            parts.append(f"{name} empty")
        elif value == _OTHER:
            parts.append(f"{name}=<another value>")
        elif isinstance(value, dt.date):
            parts.append(f"{name} {(as_of - value).days} days ago")
        elif isinstance(value, Decimal):
            parts.append(f"{name}={value.normalize():f}")
        else:
            parts.append(f"{name}={value}")
    return ", ".join(parts) or "any contact"


# -- checks ----------------------------------------------------------------------------------


@dataclass
class _Walk:
    """What walking a set's state space found: first matches and wins, shadows, overlaps, gaps."""

    total: int
    sampled: bool
    first_match: dict[str, dict[str, Any]]
    first_win: dict[str, dict[str, Any]]
    winners_over: dict[str, dict[str, dict[str, Any]]]  # shadowed candidate → winner → example
    overlaps: dict[tuple[str, str], dict[str, Any]]
    gaps: list[dict[str, Any]]
    gap_count: int = 0


def _lint_set(
    segment_set: SegmentSet,
    registry: Catalog,
    properties: Mapping[str, PropertyType],
    bins: int,
    as_of: dt.date,
    cap: int,
) -> list[Finding]:
    walk = _walk(segment_set, _space(segment_set, registry, properties, bins, as_of), as_of, cap)
    note = f" (checked a sample of {cap} of {walk.total} states)" if walk.sampled else ""
    findings = _segment_findings(segment_set, walk, as_of, note)
    if segment_set.exclusive:
        findings += _set_findings(segment_set, walk, as_of)
    return findings


def _walk(segment_set: SegmentSet, space: Any, as_of: dt.date, cap: int) -> _Walk:
    total = space.total()
    walk = _Walk(total, total > cap, {}, {}, {}, {}, [])
    tests = [(seg.key, bind(seg.rule, as_of)) for seg in segment_set.segments]
    for index in _indexes(total, cap):
        state = space.state(index)
        hits = [key for key, test in tests if test(state)]
        for key in hits:
            walk.first_match.setdefault(key, state)
        if not segment_set.exclusive:
            continue
        if not hits:
            walk.gap_count += 1
            if len(walk.gaps) < 3:
                walk.gaps.append(state)
            continue
        winner = hits[0]
        walk.first_win.setdefault(winner, state)
        for other in hits[1:]:
            walk.winners_over.setdefault(other, {}).setdefault(winner, state)
            walk.overlaps.setdefault((winner, other), state)
    return walk


def _segment_findings(segment_set: SegmentSet, walk: _Walk, as_of: dt.date, note: str) -> list[Finding]:
    """Segments that can never match, or in an exclusive set never win."""
    findings: list[Finding] = []
    level: Literal["error", "warning"] = "warning" if walk.sampled else "error"
    for seg in segment_set.segments:
        if seg.key not in walk.first_match:
            findings.append(
                Finding(
                    level,
                    seg.where,
                    f"segment {seg.key!r} can never match: its conditions contradict each other{note}",
                )
            )
        elif segment_set.exclusive and seg.key not in walk.first_win:
            shadows = walk.winners_over.get(seg.key, {})
            names = ", ".join(repr(k) for k in shadows)
            example = describe(next(iter(shadows.values())), as_of) if shadows else ""
            findings.append(
                Finding(
                    level,
                    seg.where,
                    f"segment {seg.key!r} never wins: earlier segment(s) {names} match every contact it "
                    f"matches (e.g. {example}); move it up or narrow them{note}",
                )
            )
    return findings


def _set_findings(segment_set: SegmentSet, walk: _Walk, as_of: dt.date) -> list[Finding]:
    """An exclusive set's overlaps (warnings) and gaps (an error unless allowed)."""
    findings: list[Finding] = []
    for (winner, other), state in walk.overlaps.items():
        if other in walk.first_win:  # fully shadowed segments were reported above
            findings.append(
                Finding(
                    "warning",
                    segment_set.where,
                    f"segments {winner!r} and {other!r} overlap (e.g. {describe(state, as_of)}); "
                    f"{winner!r} wins there, being first",
                )
            )
    if walk.gaps and not segment_set.allow_gaps:
        more = ""
        if walk.gap_count > 1:
            more = f" (nor {walk.gap_count - 1} other state(s), e.g. {describe(walk.gaps[1], as_of)})"
        findings.append(
            Finding(
                "error",
                segment_set.where,
                f"no segment matches {describe(walk.gaps[0], as_of)}{more}; add a segment that covers it, "
                "or set allow_gaps = true",
            )
        )
    return findings
