"""What API calls cost: the kinds of work a plan prices, and the rate windows that bound them.

In the core so a plan can say what a sync costs and how long the rate limits make it take;
the throttle in :mod:`segsync.sync.runner` enforces the same windows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CostKind = Literal[
    "pull_contacts",
    "pull_purchases",
    "create_field",
    "update_field",
    "create_list",
    "write_fields",
    "add_members",
    "remove_members",
    "read_members",
]


class RateWindow(BaseModel):
    """At most ``requests`` calls in any ``seconds``-long window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0)
    seconds: float = Field(gt=0)


__all__ = ["CostKind", "RateWindow"]
