"""Reading what CRMs put in HTTP headers, for every platform plugin alike.

Rate-limit headers steer the throttle, so a malformed one (``nan``, ``-1``, ``1e999``, text)
must never crash a sync or stall it: anything that is not a finite, non-negative number is
treated as absent, as if the CRM had not sent the header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value by case-insensitive name, or None."""
    if not headers:
        return None
    lname = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == lname), None)


def header_number(value: str | None) -> float | None:
    """A header value as a finite number >= 0, or None when absent or unreadable."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except (ValueError, AttributeError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def header_count(value: str | None) -> int | None:
    """A header value as a whole count >= 0 (``"12"``, ``"12.0"``), or None."""
    number = header_number(value)
    return int(number) if number is not None and number < 2**63 else None


__all__ = ["header", "header_count", "header_number"]
