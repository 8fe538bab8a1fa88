"""What an HTTP answer means to segsync, for every platform plugin alike.

Two things every plugin reads the same way:

* **The status classifier** (:func:`error_class`): which :mod:`segsync.errors` class an
  answer calls for. Plugins keep only their vendor's message text and body parsing (scopes a
  403 names, the wait a 429 asks for), so retry decisions cannot drift apart between CRMs:

  ======================================  ==================  ==============================
  answer                                  error               the runner and the engine
  ======================================  ==================  ==============================
  none (timeout, refused, dropped)        TransientError      retry (not blind: at_most_once)
  2xx that could not be read              TransientError      as a dropped answer
  2xx read whole, not what was documented PermanentError      stop; check the CRM's side
  401                                     AuthError           stop the platform
  403                                     PermissionDenied    stop, naming the scopes
  429                                     RateLimited         wait as asked, retry
  5xx, 408, 423, 425, 477                 TransientError      back off, retry
  anything else (3xx, other 4xx)          PermanentError      record or stop
  ======================================  ==================  ==============================

  The one rule for a 2xx the plugin cannot use: a write answered that way may or may not have
  been applied, and what went wrong decides how that is made safe. A body that cannot be
  read (not JSON, cut short) was damaged in transit like a dropped connection, so it is
  retriable: inside :meth:`~segsync.sync.runner.CallRunner.at_most_once` the runner does not re-send
  it blind, the engine's ensure-steps look the list or field up before creating again, and
  idempotent writes are simply sent again. An answer read whole but not the one the call
  documents (another 2xx status, a body of another shape) means the CRM's API changed: every
  retry would get the same answer, so it is permanent and the job stops before writing more;
  its message says to check the CRM's side, and the next run re-plans against what the CRM
  holds, so nothing is created twice.

* **Header values.** Rate-limit headers steer the throttle, so a malformed one (``nan``,
  ``-1``, ``1e999``, text) must never crash a sync or stall it: anything that is not a finite,
  non-negative number is treated as absent, as if the CRM had not sent the header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from segsync.errors import (
    AuthError,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
)

#: 4xx answers that say "not now" rather than "never": 408 Request Timeout, 423 Locked (HubSpot
#: asks for a 2 s delay), 425 Too Early (Brevo) and 477 Migration in progress (HubSpot).
TRANSIENT_4XX: frozenset[int] = frozenset({408, 423, 425, 477})


def error_class(
    status: int | None, *, readable: bool = True, documented: bool = True
) -> type[PlatformError] | None:
    """The segsync error class an HTTP answer calls for, or None for a usable success.

    ``status`` None means no answer at all (timeout, refused or dropped connection).
    ``readable`` False: a body that could not be read; ``documented`` False: a status or body
    other than the one the call documents. Both only matter for a 2xx (see the module
    docstring for why the two differ).
    """
    if status is None:
        return TransientError
    if 200 <= status < 300:
        if not readable:
            return TransientError
        return None if documented else PermanentError
    if status == 401:
        return AuthError
    if status == 403:
        return PermissionDenied
    if status == 429:
        return RateLimited
    if status >= 500 or status in TRANSIENT_4XX:
        return TransientError
    return PermanentError


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


__all__ = ["TRANSIENT_4XX", "error_class", "header", "header_count", "header_number"]
