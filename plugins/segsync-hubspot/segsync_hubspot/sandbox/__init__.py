"""A loopback emulator of the HubSpot API endpoints segsync uses, as strict as the real service.

The real SDK talks to it over HTTP. It answers with the success codes the SDK maps
(crm-api-facts §1.2), refuses what HubSpot refuses — a missing or wrong Bearer token (401),
missing scopes (403 ``MISSING_SCOPES``), batches over 100 inputs (1000 for association reads),
pages over the maximum, duplicate list names (case-insensitive), property definitions and values
of the wrong type, request bodies missing fields the spec requires — and rate-limits every call
per rolling 10-second window with 429s and the ``X-HubSpot-RateLimit-*`` headers. Unknown or
deleted ids in batches come back as 207 per-input errors. Error bodies have HubSpot's shape.

Run it with ``segsync sandbox hubspot --port P --token T [--seed demo | --seed-from DIR]``.

The package: :mod:`.facade` (:class:`HubSpotSandbox`, the :class:`segsync.sandbox.SandboxBase`
of this platform), :mod:`.server` (auth, scopes, rate limits) with the handlers in
:mod:`.records`, :mod:`.properties` and :mod:`.lists` on the wire conventions of :mod:`.wire`,
and the emulated portal in :mod:`.account` with HubSpot's value rules in :mod:`.values`.
"""

from __future__ import annotations

from segsync_hubspot.sandbox.account import Account, HubList, Record
from segsync_hubspot.sandbox.facade import HubSpotSandbox
from segsync_hubspot.sandbox.server import HubSpotServer
from segsync_hubspot.sandbox.values import InvalidValue, Property

__all__ = ["Account", "HubList", "HubSpotSandbox", "HubSpotServer", "InvalidValue", "Property", "Record"]
