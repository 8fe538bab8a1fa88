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


@dataclass(frozen=True)
class FeatureDef:
    name: str
    compute: FeatureFn
    type: FeatureType
    description: str
    plugin: str


@dataclass(frozen=True)
class OperatorDef:
    name: str
    test: OperatorFn
    arg: ArgKind
    description: str
    plugin: str
    #: Field types the operator applies to; empty means any (checked when packs load).
    types: tuple[FeatureType, ...] = ()


@dataclass
class Catalog:
    """Features and operators by name. :class:`segsync.plugins.registry.Registry` is one."""

    features: dict[str, FeatureDef] = field(default_factory=dict)
    operators: dict[str, OperatorDef] = field(default_factory=dict)


__all__ = ["ArgKind", "Catalog", "FeatureDef", "FeatureFn", "FeatureType", "OperatorDef", "OperatorFn"]
