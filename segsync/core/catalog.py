"""What segment rules can name besides contact properties: features and operators.

Plugins contribute them through the ``register_features`` / ``register_rule_operators`` hooks
(see :mod:`segsync.plugins.registry`); the core only reads a :class:`Catalog`, so computing
segments needs no plugin manager, platform or retry layer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from segsync.core.models import Contact, PurchaseSummary

FeatureType = Literal["number", "string", "date", "boolean"]
ArgKind = Literal["none", "scalar", "list", "pair", "days"]
FeatureFn = Callable[[Contact, PurchaseSummary | None, dt.date], Any]
OperatorFn = Callable[[Any, Any, dt.date], bool]
#: A feature over every contact at once: ``vector(frame)`` gets a
#: :class:`segsync.core.columns.Frame` and returns a :class:`~segsync.core.columns.Column`, or
#: one value per contact (as the per-contact form would return them).
VectorFeatureFn = Callable[[Any], Any]
#: An operator over a whole column: ``vector(column, arg, as_of)`` returns one bool per contact
#: (numpy), or None when it has no fast form for that kind of column (the per-value ``test`` is
#: then asked once per distinct value).
VectorOperatorFn = Callable[[Any, Any, dt.date], Any]


@dataclass(frozen=True)
class FeatureDef:
    name: str
    compute: FeatureFn
    type: FeatureType
    description: str
    plugin: str
    #: optional columnar form (:data:`VectorFeatureFn`); without it the columnar compute calls
    #: ``compute`` once per contact
    vector: VectorFeatureFn | None = None


@dataclass(frozen=True)
class OperatorDef:
    name: str
    test: OperatorFn
    arg: ArgKind
    description: str
    plugin: str
    #: Field types the operator applies to; empty means any (checked when packs load).
    types: tuple[FeatureType, ...] = ()
    #: optional columnar form (:data:`VectorOperatorFn`)
    vector: VectorOperatorFn | None = None


@dataclass
class Catalog:
    """Features and operators by name. :class:`segsync.plugins.registry.Registry` is one."""

    features: dict[str, FeatureDef] = field(default_factory=dict)
    operators: dict[str, OperatorDef] = field(default_factory=dict)


__all__ = [
    "ArgKind",
    "Catalog",
    "FeatureDef",
    "FeatureFn",
    "FeatureType",
    "OperatorDef",
    "OperatorFn",
    "VectorFeatureFn",
    "VectorOperatorFn",
]
