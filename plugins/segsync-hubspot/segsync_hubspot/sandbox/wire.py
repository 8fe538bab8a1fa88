"""HubSpot's wire conventions in the sandbox: error bodies, maxima, request parsing, batches, pages.

Every handler module builds on these, so a malformed request gets the 400 HubSpot sends
whichever endpoint it hit.
"""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from segsync.sandbox import Handler, HttpError, Request, Response
from segsync_hubspot.sandbox.values import id_key, iso

if TYPE_CHECKING:
    from segsync_hubspot.sandbox.account import Account
    from segsync_hubspot.sandbox.facade import HubSpotSandbox
    from segsync_hubspot.sandbox.server import HubSpotServer

PAGE_MAX = 100
BATCH_MAX = 100
ASSOCIATION_BATCH_MAX = 1000
MEMBERSHIP_PAGE_MAX = 250

_CATEGORY = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}

#: One endpoint: method, path regex, handler and the private-app scopes it needs.
Endpoint = tuple[str, str, Handler, tuple[str, ...]]


def error(status: int, message: str, category: str | None = None, **extra: Any) -> HttpError:
    """HubSpot's single-error body (``Error``: category, correlationId, message)."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category or _CATEGORY.get(status, "ERROR"),
        **extra,
    }
    return HttpError(status, body)


def item_error(
    category: str, message: str, *, ids: Sequence[str] = (), code: str = "", properties: Sequence[str] = ()
) -> dict[str, Any]:
    """One entry of a 207's ``errors`` (``StandardError``); the failing input ids in ``context.ids``."""
    context: dict[str, list[str]] = {}
    if ids:
        context["ids"] = list(ids)
    if properties:
        context["propertyName"] = list(properties)
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [{"message": message, "code": code}] if code else [],
        "links": {},
    }


def not_found(record_id: str) -> dict[str, Any]:
    """The 207 entry for an input naming a record that does not exist (or was deleted)."""
    return item_error("OBJECT_NOT_FOUND", "Object not found.", ids=[record_id], code="OBJECT_NOT_FOUND")


# -- request parsing -------------------------------------------------------------------------


def json_body(req: Request) -> Any:
    try:
        return req.json()
    except HttpError:
        raise error(400, "Invalid input JSON: the request body must be a JSON document.") from None


def limit_arg(req: Request, default: int, maximum: int) -> int:
    raw = req.arg("limit")
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= maximum:
        raise error(400, f"limit must be a whole number from 1 to {maximum}; got {raw!r}")
    return int(raw)


def names_arg(req: Request, key: str) -> list[str]:
    return [n.strip() for raw in req.args(key) for n in raw.split(",") if n.strip()]


def bool_arg(req: Request, key: str) -> bool:
    raw = (req.arg(key) or "false").lower()
    if raw not in ("true", "false"):
        raise error(400, f"{key} must be true or false")
    return raw == "true"


def cursor_arg(raw: str | None) -> str | None:
    if raw is not None and not re.fullmatch(r"\d+", raw):
        raise error(400, f"Invalid paging cursor {raw!r}")
    return raw


def batch_inputs(body: Any, maximum: int) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise error(400, "Invalid input: 'inputs' is required and must be a list")
    inputs: list[Any] = body["inputs"]
    if len(inputs) > maximum:
        raise error(
            400,
            f"Batch input limit exceeded: {len(inputs)} inputs were sent, the maximum is {maximum}.",
            context={"maxInputs": [str(maximum)]},
        )
    return inputs


# -- answers ---------------------------------------------------------------------------------


def id_page(ids: Sequence[str], after: str | None, limit: int) -> tuple[Sequence[str], str | None]:
    """A window of id-ordered ids; the cursor is the next id, so deletions never skip records."""
    keys = [id_key(i) for i in ids]
    start = bisect.bisect_left(keys, id_key(after)) if after else 0
    page = ids[start : start + limit]
    nxt = ids[start + limit] if start + limit < len(ids) else None
    return page, nxt


class Routes:
    """A group of the portal's endpoints; handlers share the server's account, options and clock."""

    def __init__(self, server: HubSpotServer) -> None:
        self.server = server

    @property
    def account(self) -> Account:
        return self.server.account

    @property
    def sandbox(self) -> HubSpotSandbox:
        return self.server.sandbox

    def endpoints(self) -> Iterable[Endpoint]:
        raise NotImplementedError

    def now(self) -> str:
        return iso(self.sandbox.now())

    def paging(self, req: Request, nxt: str | None) -> dict[str, Any]:
        if nxt is None:
            return {}
        return {"paging": {"next": {"after": nxt, "link": f"{self.server.base}{req.path}?after={nxt}"}}}

    def batch(self, results: list[Any], errors: list[dict[str, Any]], ok: int, started: str) -> Response:
        """A batch answer: ``ok`` when every input succeeded, else 207 with per-input errors."""
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": self.now(),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(ok, body)
