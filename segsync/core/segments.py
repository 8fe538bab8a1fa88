"""Segment packs as the core uses them: sets of segments, each with its rule and index card.

Compiled from TOML by :mod:`segsync.project.manifest`; everything here is plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Literal

from segsync.core.rules import Rule, rule_fields
from segsync.errors import ManifestError

#: The managed enumeration field of the RFM set; previous segment and "since" track this set.
RFM_SEGMENT_FIELD = "segsync_rfm_segment"
#: Managed fields segsync writes itself; a segment set may not use these as its field.
RESERVED_FIELDS = frozenset(
    {
        "segsync_rfm_r_score",
        "segsync_rfm_f_score",
        "segsync_rfm_m_score",
        "segsync_rfm_score",
        "segsync_recency_days",
        "segsync_order_count",
        "segsync_revenue",
        "segsync_average_order",
        "segsync_first_purchase",
        "segsync_last_purchase",
        "segsync_previous_segment",
        "segsync_segment_since",
    }
)


@dataclass(frozen=True)
class Segment:
    key: str
    name: str
    description: str
    intent: str
    list: bool
    rule: Rule
    where: str = dc_field(default="", compare=False)

    @property
    def list_name(self) -> str:
        return f"segsync · {self.name}"


@dataclass(frozen=True)
class SegmentSet:
    key: str
    label: str
    mode: Literal["exclusive", "independent"]
    segments: tuple[Segment, ...]
    field: str | None = None
    allow_gaps: bool = False
    description: str = ""
    where: str = dc_field(default="", compare=False)

    @property
    def exclusive(self) -> bool:
        return self.mode == "exclusive"

    @property
    def fields(self) -> frozenset[str]:
        """Every feature or property the set's rules read."""
        return frozenset().union(*(rule_fields(s.rule) for s in self.segments))


@dataclass(frozen=True)
class SegmentPack:
    name: str
    source: str
    sets: tuple[SegmentSet, ...]
    description: str = ""
    params: Mapping[str, Any] = dc_field(default_factory=dict)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset().union(*(s.fields for s in self.sets))


def check_unique(packs: Sequence[SegmentPack]) -> None:
    sets: dict[str, str] = {}
    fields: dict[str, str] = {}
    lists: dict[str, str] = {}
    for pack in packs:
        for s in pack.sets:
            if s.key in sets:
                raise ManifestError(s.where, f"set key {s.key!r} is already used by {sets[s.key]}")
            sets[s.key] = s.where
            if s.field is not None:
                if s.field in fields:
                    raise ManifestError(s.where, f"field {s.field!r} is already written by {fields[s.field]}")
                fields[s.field] = s.where
            for segment in s.segments:
                if not segment.list:
                    continue
                # CRMs compare list names loosely; treat names differing only in case as equal.
                name = segment.list_name.casefold()
                if name in lists:
                    raise ManifestError(
                        segment.where, f"list name {segment.list_name!r} is already used by {lists[name]}"
                    )
                lists[name] = segment.where


__all__ = ["RESERVED_FIELDS", "RFM_SEGMENT_FIELD", "Segment", "SegmentPack", "SegmentSet", "check_unique"]
