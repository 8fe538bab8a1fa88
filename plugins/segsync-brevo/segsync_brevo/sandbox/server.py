"""The Brevo sandbox's HTTP side: routes, ``api-key`` auth, rate buckets and headers, faults.

Endpoints live in the handler modules (:mod:`.contacts`, :mod:`.attributes`, :mod:`.lists`,
:mod:`.imports`, :mod:`.crm`); every handler first applies the imports that completed by
themselves, so what a request sees is what Brevo would hold by then.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from segsync.sandbox import Handler, RateTake, Request, Response, SandboxServer
from segsync_brevo.config import bucket_for_path
from segsync_brevo.sandbox.attributes import AttributeRoutes
from segsync_brevo.sandbox.contacts import ContactRoutes
from segsync_brevo.sandbox.crm import CrmRoutes
from segsync_brevo.sandbox.deal_writes import DealWriteRoutes
from segsync_brevo.sandbox.imports import ImportRoutes
from segsync_brevo.sandbox.lists import ListRoutes
from segsync_brevo.sandbox.wire import CODES, Endpoint

if TYPE_CHECKING:
    from segsync_brevo.sandbox.facade import BrevoSandbox

_GATEWAY_PAGE = (
    "<html><head><title>{status} {text}</title></head><body><center><h1>{status} {text}</h1></center>"
    "<hr><center>cloudflare</center></body></html>"
)
_TOO_MANY = {"code": "too_many_requests", "message": "Too many requests"}


class BrevoServer(SandboxServer):
    """The Brevo wire conventions on the shared sandbox server: auth, errors, rate headers."""

    sandbox: BrevoSandbox

    def _endpoints(self) -> Iterable[Endpoint]:
        # Order matters: /contacts/{identifier} would match every more specific /contacts/... path.
        contacts = ContactRoutes(self)
        yield from contacts.endpoints()
        yield from AttributeRoutes(self).endpoints()
        yield from ListRoutes(self).endpoints()
        yield from ImportRoutes(self).endpoints()
        yield from contacts.endpoints_by_identifier()
        yield from CrmRoutes(self).endpoints()
        yield from DealWriteRoutes(self).endpoints()

    def endpoints(self) -> Iterable[tuple[str, str, Handler]]:
        for method, pattern, handler in self._endpoints():
            yield method, pattern, self._settled(handler)

    def _settled(self, handler: Handler) -> Handler:
        def run(req: Request, m: re.Match[str]) -> Response:
            self.sandbox.imports.settle()
            return handler(req, m)

        return run

    # -- auth and errors ---------------------------------------------------------------------

    def authenticate(self, req: Request) -> Response | None:
        if not req.path.startswith("/v3/"):
            # e.g. the SDK's OAuth token call when BREVO_CLIENT_ID/SECRET leak in
            self.sandbox.foreign_calls += 1
            return Response(401, self.error_body(401, "OAuth is not enabled for this account"))
        if req.header("api-key") != self.sandbox.secret:
            return Response(401, self.error_body(401, "Key not found"))
        return None

    def error_body(self, status: int, message: str) -> Any:
        return {"code": CODES.get(status, "bad_request"), "message": message}

    # -- rate limits -------------------------------------------------------------------------

    def bucket_for(self, req: Request) -> str:
        return bucket_for_path(req.path)

    @staticmethod
    def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
        return {
            "x-sib-ratelimit-limit": str(limit),
            "x-sib-ratelimit-remaining": str(max(0, remaining)),
            "x-sib-ratelimit-reset": str(max(1, math.ceil(reset))),
        }

    def rate_headers(self, takes: Mapping[str, RateTake]) -> dict[str, str]:
        (take,) = takes.values()
        return self._headers(take.limit, take.remaining, take.reset) if take.limit else {}

    def too_many(self, req: Request, take: RateTake, takes: Mapping[str, RateTake]) -> Response:
        return Response(429, dict(_TOO_MANY), self._headers(take.limit, 0, take.reset))

    def fault_response(self, kind: str, req: Request) -> Response:
        status = int(kind)
        if status == 429:
            # A burst limit: the window frees within a second.
            return Response(429, dict(_TOO_MANY), self._headers(10, 0, 1))
        if status in (502, 503):
            text = "Bad Gateway" if status == 502 else "Service Temporarily Unavailable"
            page = _GATEWAY_PAGE.format(status=status, text=text).encode()
            return Response(status, page, {"Content-Type": "text/html"})
        return Response(status, {"code": "internal_error", "message": "Internal server error"})
