"""The fields and lists segsync manages for a configuration: what the engine creates, pulls and
writes, before any data is seen."""

from __future__ import annotations

from collections.abc import Sequence

from segsync.core.catalog import Catalog
from segsync.core.models import FieldOption, FieldSpec, ListSpec
from segsync.core.segments import RFM_SEGMENT_FIELD, SegmentPack, SegmentSet
from segsync.core.settings import ScoringConfig

PREVIOUS_FIELD = "segsync_previous_segment"
SINCE_FIELD = "segsync_segment_since"


def list_key(segment_set: SegmentSet, segment_key: str) -> str:
    return f"{segment_set.key}.{segment_key}"


def _options(segment_set: SegmentSet) -> tuple[FieldOption, ...]:
    return tuple(
        FieldOption(value=s.key, label=s.name, description=s.description) for s in segment_set.segments
    )


def _all_sets(packs: Sequence[SegmentPack]) -> list[SegmentSet]:
    return [s for pack in packs for s in pack.sets]


def rfm_set(packs: Sequence[SegmentPack]) -> SegmentSet | None:
    """The exclusive set written to ``segsync_rfm_segment``, if any pack declares one."""
    return next((s for s in _all_sets(packs) if s.field == RFM_SEGMENT_FIELD), None)


def desired_fields(config: ScoringConfig, packs: Sequence[SegmentPack]) -> tuple[FieldSpec, ...]:
    """Every field segsync manages for this configuration (the engine needs these to pull)."""
    primary = rfm_set(packs)
    specs: list[FieldSpec] = []
    if primary is not None:
        specs.append(
            FieldSpec(
                key=RFM_SEGMENT_FIELD,
                label=primary.label,
                type="enumeration",
                description=primary.description or "segment of the RFM map; first match wins",
                options=_options(primary),
            )
        )
    specs += _score_fields(config)
    specs += _purchase_fields(config)
    if primary is not None:
        specs += _history_fields(primary)
    for s in _all_sets(packs):
        if s.exclusive and s is not primary and s.field is not None:
            specs.append(
                FieldSpec(
                    key=s.field,
                    label=s.label,
                    type="enumeration",
                    description=s.description,
                    options=_options(s),
                )
            )
    return tuple(specs)


def _score_fields(config: ScoringConfig) -> list[FieldSpec]:
    bins = config.rfm.bins
    specs = [
        FieldSpec(key=key, label=label, type="number", description=f"{text}; empty: no purchase")
        for key, label, text in (
            ("segsync_rfm_r_score", "RFM recency score", f"1 (longest ago) to {bins} (most recent)"),
            ("segsync_rfm_f_score", "RFM frequency score", f"1 (fewest orders) to {bins} (most)"),
            ("segsync_rfm_m_score", "RFM monetary score", f"1 (lowest {config.rfm.monetary}) to {bins}"),
        )
    ]
    specs.append(
        FieldSpec(
            key="segsync_rfm_score",
            label="RFM score",
            type="string",
            description='R, F and M scores, e.g. "545"',
        )
    )
    return specs


def _purchase_fields(config: ScoringConfig) -> list[FieldSpec]:
    rfm = config.rfm
    specs: list[FieldSpec] = []
    if rfm.write_recency_days:
        specs.append(
            FieldSpec(
                key="segsync_recency_days",
                label="Days since last purchase",
                type="number",
                description="days from the latest order to the reference date",
            )
        )
    window = f"in the last {rfm.frequency_window_days} days" if rfm.frequency_window_days else ""
    return specs + [
        FieldSpec(
            key="segsync_order_count",
            label="Order count",
            type="number",
            description=f"won orders {window}".strip(),
        ),
        FieldSpec(
            key="segsync_revenue",
            label="Revenue",
            type="number",
            description=f"orders minus refunds {window}, {rfm.currency}".replace("  ", " "),
        ),
        FieldSpec(
            key="segsync_average_order",
            label="Average order value",
            type="number",
            description=f"revenue / orders, {rfm.currency}",
        ),
        FieldSpec(
            key="segsync_first_purchase", label="First purchase", type="date", description="first order"
        ),
        FieldSpec(
            key="segsync_last_purchase", label="Last purchase", type="date", description="latest order"
        ),
    ]


def _history_fields(primary: SegmentSet) -> list[FieldSpec]:
    return [
        FieldSpec(
            key=PREVIOUS_FIELD,
            label="Previous RFM segment",
            type="enumeration",
            description="the RFM segment before the current one",
            options=_options(primary),
        ),
        FieldSpec(
            key=SINCE_FIELD,
            label="In RFM segment since",
            type="date",
            description="when the contact entered its current RFM segment",
        ),
    ]


def desired_lists(packs: Sequence[SegmentPack]) -> tuple[ListSpec, ...]:
    """One list per segment that keeps one; exclusive ones carry the filter for dynamic lists."""
    out: list[ListSpec] = []
    for s in _all_sets(packs):
        for seg in s.segments:
            if not seg.list:
                continue
            out.append(
                ListSpec(
                    key=list_key(s, seg.key),
                    name=seg.list_name,
                    description=seg.description,
                    filter_field=s.field if s.exclusive else None,
                    filter_value=seg.key if s.exclusive else None,
                )
            )
    return tuple(out)


def required_properties(
    config: ScoringConfig, packs: Sequence[SegmentPack], registry: Catalog
) -> tuple[str, ...]:
    """Contact properties the rules read (the engine asks the platform to pull these)."""
    used = frozenset().union(*(p.fields for p in packs))
    return tuple(sorted(n for n in used if n not in registry.features and n in config.properties))


__all__ = [
    "PREVIOUS_FIELD",
    "SINCE_FIELD",
    "desired_fields",
    "desired_lists",
    "list_key",
    "required_properties",
    "rfm_set",
]
