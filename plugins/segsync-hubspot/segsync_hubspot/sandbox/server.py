"""The HubSpot sandbox's HTTP side: routes, Bearer auth, scopes, rate-limit headers, faults.

Endpoints live in the handler modules (:mod:`.records`, :mod:`.properties`, :mod:`.lists`),
each listing its routes with the private-app scopes they need; this server checks the token
and those scopes before any handler runs, counts every request in the rolling 10-second and
the daily window, and answers like HubSpot when one is full.
"""

from __future__ import annotations

import hmac
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segsync import Clock
from segsync.sandbox import FaultPlan, Handler, RateTake, Request, Response, SandboxServer
from segsync_hubspot.sandbox.account import Account
from segsync_hubspot.sandbox.deals import DealRoutes
from segsync_hubspot.sandbox.lists import ListRoutes
from segsync_hubspot.sandbox.properties import PropertyRoutes
from segsync_hubspot.sandbox.records import RecordRoutes
from segsync_hubspot.sandbox.search import SearchRoutes
from segsync_hubspot.sandbox.wire import Endpoint, error

if TYPE_CHECKING:
    from segsync_hubspot.sandbox.facade import HubSpotSandbox

TEN_SECONDS = 10.0
DAY = 86_400.0
#: HubSpot's two windows: every request counts in both, the 10-second one first.
BUCKETS = ("ten_secondly", "daily")
SEARCH_BUCKETS = ("search", "daily")


class HubSpotServer(SandboxServer):
    """Routes, auth, scopes and rate limits of the emulated portal."""

    sandbox: HubSpotSandbox

    def __init__(
        self,
        sandbox: HubSpotSandbox,
        *,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.account: Account = sandbox.account
        self._scopes: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = []
        self._groups = (
            RecordRoutes(self),
            SearchRoutes(self),
            DealRoutes(self),
            PropertyRoutes(self),
            ListRoutes(self),
        )
        super().__init__(sandbox, port=port, traffic_log=traffic_log, faults=faults, clock=clock)

    def _endpoints(self) -> Iterable[Endpoint]:
        for group in self._groups:
            yield from group.endpoints()

    def endpoints(self) -> Iterable[tuple[str, str, Handler]]:
        for method, pattern, handler, scopes in self._endpoints():
            self._scopes.append((method, re.compile(f"^{pattern}$"), scopes))
            yield method, pattern, handler

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, req: Request) -> Response | None:
        auth = req.header("Authorization")
        if not auth or not auth.startswith("Bearer "):
            return error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication; "
                "send the private app access token as 'Authorization: Bearer <token>'.",
            ).response
        if not hmac.compare_digest(auth[len("Bearer ") :].encode(), self.sandbox.secret.encode()):
            return error(401, "The access token provided is invalid or has expired.").response
        granted = self.sandbox.scopes
        if granted is None:
            return None
        needed = next(
            (
                scopes
                for method, pattern, scopes in self._scopes
                if method == req.method and pattern.match(req.path)
            ),
            (),
        )
        missing = [s for s in needed if s not in granted]
        if not missing:
            return None
        text = "This app hasn't been granted all required scopes to make this call."
        return error(
            403,
            text,
            context={"requiredScopes": missing},
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredScopes": missing},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        ).response

    def error_body(self, status: int, message: str) -> Any:
        return error(status, message).response.body

    # -- rate limits -------------------------------------------------------------------------

    def buckets_for(self, req: Request) -> Sequence[str]:
        # search has its own per-second limit and is exempt from the ten-secondly one (§1.4)
        return (
            SEARCH_BUCKETS
            if req.method == "POST" and req.path.endswith("/search") and "/objects/" in req.path
            else BUCKETS
        )

    def _limit_headers(
        self, limit: int, remaining: int, daily_remaining: int | None = None
    ) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(TEN_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Daily": str(self.sandbox.daily_limit),
        }
        if daily_remaining is not None:
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(daily_remaining, 0))
        return headers

    def rate_headers(self, takes: Mapping[str, RateTake]) -> dict[str, str]:
        if "ten_secondly" not in takes:
            return {}  # whether search answers carry rate headers is unconfirmed: none
        ten, day = takes["ten_secondly"], takes["daily"]
        return self._limit_headers(ten.limit, ten.remaining, day.remaining)

    def _too_many(self, policy: str, headers: dict[str, str]) -> Response:
        name = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "daily"
        body = {
            "status": "error",
            "message": f"You have reached your {name} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        }
        return Response(429, body, headers)

    def too_many(self, req: Request, take: RateTake, takes: Mapping[str, RateTake]) -> Response:
        if take.bucket == "search":
            return self._too_many("SECONDLY", {})
        if take.bucket == "ten_secondly":
            return self._too_many("TEN_SECONDLY_ROLLING", self._limit_headers(take.limit, 0))
        ten = takes["ten_secondly"]
        return self._too_many("DAILY", self._limit_headers(ten.limit, ten.remaining, 0))

    def fault_response(self, kind: str, req: Request) -> Response:
        if kind == "429":
            resp = self._too_many("TEN_SECONDLY_ROLLING", self._limit_headers(self.sandbox.rate_limit, 0))
            if self.sandbox.retry_after_on_429:
                resp.headers["Retry-After"] = str(max(1, math.ceil(TEN_SECONDS)))
            return resp
        status = int(kind)
        return error(status, "An internal error occurred; try again.", "INTERNAL_ERROR").response
