"""The one error map: brevo-python's real exception types in, segsync errors out, nothing leaked."""

from __future__ import annotations

import re

import httpx
import pytest
from brevo.core.api_error import ApiError
from brevo.core.parse_error import ParsingError
from brevo.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    TooEarlyError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableEntityError,
)

from segsync import (
    AuthError,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
)
from segsync.sandbox import Response
from segsync_brevo.client import from_api_error, translated

from .conftest import connect

SECRET = "xkeysib-9f8e7d6c5b4a-live-key"
PII = "jane.doe+vip@example.com"
HEADERS = {"api-key": SECRET, "x-sib-ratelimit-remaining": "0", "set-cookie": "session=abc"}


def body(code: str) -> dict[str, str]:
    return {"code": code, "message": f"Contact {PII} does not exist"}


@pytest.mark.parametrize(
    ("exc", "kind", "status", "category"),
    [
        (UnauthorizedError(headers=HEADERS, body=body("unauthorized")), AuthError, 401, "unauthorized"),
        (
            ApiError(status_code=401, headers=HEADERS, body=body("unauthorized")),
            AuthError,
            401,
            "unauthorized",
        ),
        (
            ForbiddenError(headers=HEADERS, body=body("permission_denied")),
            PermissionDenied,
            403,
            "permission_denied",
        ),
        (
            BadRequestError(headers=HEADERS, body=body("invalid_parameter")),
            PermanentError,
            400,
            "invalid_parameter",
        ),
        (
            NotFoundError(headers=HEADERS, body=body("document_not_found")),
            PermanentError,
            404,
            "document_not_found",
        ),
        (
            ApiError(status_code=409, headers=HEADERS, body=body("duplicate_request")),
            PermanentError,
            409,
            None,
        ),
        (
            UnprocessableEntityError(headers=HEADERS, body=body("unprocessable_entity")),
            PermanentError,
            422,
            None,
        ),
        (
            ApiError(status_code=402, headers=HEADERS, body=body("not_enough_credits")),
            PermanentError,
            402,
            None,
        ),
        (TooManyRequestsError(headers=HEADERS, body=body("too_many_requests")), RateLimited, 429, None),
        (TooEarlyError(headers=HEADERS, body=body("bad_request")), TransientError, 425, None),
        (ApiError(status_code=408, headers=HEADERS, body=None), TransientError, 408, None),
        (ApiError(status_code=423, headers=HEADERS, body=None), TransientError, 423, None),
        (ApiError(status_code=477, headers=HEADERS, body=None), TransientError, 477, None),
        (ApiError(status_code=500, headers=HEADERS, body=body("bad_request")), TransientError, 500, None),
        (ApiError(status_code=502, headers=HEADERS, body=f"<html>{PII}</html>"), TransientError, 502, None),
        (ApiError(status_code=524, headers=HEADERS, body="A timeout occurred"), TransientError, 524, None),
        (ApiError(status_code=200, headers=HEADERS, body="not json"), TransientError, 200, None),
        (ApiError(status_code=None, headers=None, body=None), TransientError, None, None),
    ],
)
def test_api_errors_translate_by_status_without_body_or_headers(exc, kind, status, category):
    with pytest.raises(kind) as caught, translated("contacts.list", "https://api.brevo.com/v3"):
        raise exc
    err = caught.value
    assert type(err) is kind
    assert err.status == status
    assert err.platform == "brevo"
    assert err.operation == "contacts.list"
    if category:
        assert err.category == category
    text = str(err)
    for secret in (SECRET, PII, "session=abc", "does not exist", "<html>"):
        assert secret not in text
    assert err.__cause__ is None
    assert err.__suppress_context__


def test_auth_errors_say_which_variable_to_fix():
    err = from_api_error(UnauthorizedError(headers=HEADERS, body=body("unauthorized")), "check")
    assert "SEGSYNC_BREVO_API_KEY" in str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"x-sib-ratelimit-reset": "42", "x-sib-ratelimit-remaining": "0"}, 42.0),
        ({"X-Sib-RateLimit-Reset": "7"}, 7.0),
        ({"Retry-After": "3"}, 3.0),
        ({"x-sib-ratelimit-reset": "5", "Retry-After": "30"}, 5.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"x-sib-ratelimit-reset": "soon"}, None),
        ({"x-sib-ratelimit-reset": "nan"}, None),
        ({"x-sib-ratelimit-reset": "inf", "Retry-After": "-4"}, None),
        ({"x-sib-ratelimit-reset": "1e999"}, None),
        ({}, None),
    ],
)
def test_429_waits_for_brevos_reset_header(headers, wait):
    err = from_api_error(TooManyRequestsError(headers=headers, body=body("too_many_requests")), "deals.list")
    assert isinstance(err, RateLimited)
    assert err.retry_after == wait


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
def test_transport_failures_are_transient_and_name_the_base_url(exc):
    with pytest.raises(TransientError) as caught, translated("contacts.import", "http://127.0.0.1:9/v3"):
        raise exc
    assert "http://127.0.0.1:9/v3" in str(caught.value)
    assert type(exc).__name__ in str(caught.value)


def test_unparseable_success_bodies_are_permanent_and_unechoed():
    with pytest.raises(PermanentError) as caught, translated("lists.get", "https://api.brevo.com/v3"):
        raise ParsingError(status_code=200, headers=HEADERS, body={"email": PII})
    assert PII not in str(caught.value)


def test_other_exceptions_pass_through_untouched():
    with pytest.raises(KeyError), translated("x", "https://api.brevo.com/v3"):
        raise KeyError("a bug in segsync is not a CRM error")
    assert issubclass(AuthError, PlatformError)


def test_error_codes_that_are_not_plain_enums_are_not_kept():
    odd = ApiError(status_code=400, headers={}, body={"code": f"bad {PII}", "message": "x"})
    err = from_api_error(odd, "x")
    assert err.category is None
    assert PII not in str(err)


def _answering(sandbox, status: int, raw: bytes):
    def handler(req, m):
        return Response(status, raw, {"Content-Type": "application/json"})

    sandbox.server.routes.insert(0, ("GET", re.compile(r"^/v3/contacts/lists/(\d+)$"), handler))


@pytest.mark.parametrize("raw", [b"not json", b'{"id": 1, "name": "cut sho'])
def test_an_unreadable_success_is_transient_and_retried(quiet_sandbox, clock, raw):
    """segsync.sync.http's rule: a 2xx that cannot be read may or may not have been applied."""
    _answering(quiet_sandbox, 200, raw)
    platform = connect(quiet_sandbox, clock)
    with pytest.raises(TransientError) as caught:
        platform.get_list("1")
    assert caught.value.status == 200
    assert platform.runner.stats.retries == platform.runner.policy.max_attempts - 1
