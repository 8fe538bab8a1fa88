"""Built-in features, registered through the same hook plugins use.

The functions live in :mod:`segsync.core.features`; the RFM scores are registered here too, so
rules can name them and are type-checked against them, but their values come from
:func:`segsync.core.desired.compute`, which scores the whole population at once.
"""

from __future__ import annotations

from segsync.core.columns.column import VECTOR_FEATURES
from segsync.core.features import BUILTIN_FEATURES, RFM_FEATURES, population_feature
from segsync.plugins.hookspecs import hookimpl
from segsync.plugins.registry import FeatureRegister


@hookimpl
def register_features(register: FeatureRegister) -> None:
    for name, compute, ftype, description in BUILTIN_FEATURES:
        register.add_feature(name, compute, type=ftype, description=description, vector=VECTOR_FEATURES[name])
    for name, (ftype, description) in RFM_FEATURES.items():
        register.add_feature(name, population_feature(name), type=ftype, description=description)
