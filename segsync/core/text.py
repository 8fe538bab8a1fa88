"""Numbers as people read them, shared by the core's plan descriptions and every command."""

from __future__ import annotations

import math
from decimal import Decimal


def human_duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min"``, ``"2.5 h"``: rounded up, so a wait is never understated."""
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def money(v: Decimal | int | float | None) -> str:
    if v is None:
        return "-"
    return f"{Decimal(v):,.2f}"


__all__ = ["human_duration", "money"]
