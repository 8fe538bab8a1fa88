"""Deprecated alias (segsync 0.1): import these names from :mod:`segsync`."""

from __future__ import annotations

from segsync._deprecated import alias

__getattr__ = alias(
    "segsync.platform",
    {
        **dict.fromkeys(("Platform", "PlatformLimits", "PlatformSettings"), "segsync.sync.platform"),
        "CostKind": "segsync.core.cost",
        **dict.fromkeys(("WriteResult", "Contact", "Rejection"), "segsync.core.models"),
    },
)
