"""Brevo's wire conventions in the sandbox: error bodies, query and body checks, pages.

Brevo refuses unknown query parameters and out-of-range values with ``{"code", "message"}``
bodies; every handler module checks its requests with these helpers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from segsync.sandbox import Handler, HttpError, Request
from segsync_brevo.mapping import parse_datetime

if TYPE_CHECKING:
    from segsync_brevo.sandbox.account import BrevoAccount
    from segsync_brevo.sandbox.facade import BrevoSandbox
    from segsync_brevo.sandbox.server import BrevoServer

#: One endpoint: method, path regex and handler.
Endpoint = tuple[str, str, Handler]
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    402: "not_enough_credits",
    403: "permission_denied",
    404: "document_not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    422: "unprocessable_entity",
}
_DUPLICATE_EMAIL = {"duplicate_identifiers": ["email"]}


def bad(message: str, code: str = "invalid_parameter", status: int = 400) -> HttpError:
    return HttpError(status, {"code": code, "message": message})


def duplicate_email(action: str) -> HttpError:
    """Brevo's answer when an email belongs to another contact (crm-api-facts §2.2, pitfall 11)."""
    message = f"Unable to {action} contact, email is already associated with another Contact"
    return HttpError(400, {"code": "duplicate_parameter", "message": message, "metadata": _DUPLICATE_EMAIL})


def missing(what: str) -> HttpError:
    return HttpError(404, {"code": "document_not_found", "message": f"{what} does not exist"})


# -- request checks ----------------------------------------------------------------------------


def only(req: Request, allowed: Iterable[str]) -> None:
    unknown = sorted(set(req.query) - set(allowed))
    if unknown:
        raise bad(f"unknown query parameter {unknown[0]}")


def int_arg(req: Request, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    raw = req.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if value < low:
        raise bad(f"{name} must be at least {low}", "out_of_range")
    if high is not None and value > high:
        raise bad(f"{name} must be at most {high}", "out_of_range")
    return value


def int_value(raw: str, name: str) -> int:
    if not raw.isdigit():
        raise bad(f"{name} must be integers")
    return int(raw)


def since_arg(req: Request, name: str) -> dt.datetime | None:
    raw = req.arg(name)
    if raw is None:
        return None
    parsed = parse_datetime(raw)
    if parsed is None:
        raise bad(f"{name} must be a UTC date-time YYYY-MM-DDTHH:mm:ss.SSSZ")
    return parsed


def object_body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def sorted_items(items: list[Any], req: Request) -> list[Any]:
    sort = req.arg("sort", "desc")
    if sort not in ("asc", "desc"):
        raise bad("sort must be asc or desc")
    return items if sort == "asc" else list(reversed(items))


def page(req: Request, items: list[Any], *, default: int, high: int) -> list[Any]:
    """One ``limit``/``offset`` window of ``items`` in the ``sort`` order asked for."""
    limit = int_arg(req, "limit", default, high=high)
    offset = int_arg(req, "offset", 0)
    if req.arg("sort", "desc") == "desc":  # the window from the end, without reversing every item
        end = max(len(items) - offset, 0)
        return items[max(end - limit, 0) : end][::-1]
    return sorted_items(items, req)[offset : offset + limit]


class Routes:
    """A group of the account's endpoints; handlers share the server's account and options."""

    def __init__(self, server: BrevoServer) -> None:
        self.server = server

    @property
    def account(self) -> BrevoAccount:
        return self.server.sandbox.state

    @property
    def sandbox(self) -> BrevoSandbox:
        return self.server.sandbox

    def endpoints(self) -> Iterable[Endpoint]:
        raise NotImplementedError
