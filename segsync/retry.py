"""Deprecated alias (segsync 0.1): import these names from :mod:`segsync`."""

from __future__ import annotations

from segsync._deprecated import alias

__getattr__ = alias(
    "segsync.retry",
    {
        **dict.fromkeys(
            (
                "CallRunner",
                "CallStats",
                "Clock",
                "RetryPolicy",
                "SimulatedClock",
                "SimulatedWallClock",
                "SystemClock",
            ),
            "segsync.sync.runner",
        ),
        "RateWindow": "segsync.core.cost",
        "RetriableError": "segsync.errors",
    },
)
