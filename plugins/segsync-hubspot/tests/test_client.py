"""SDK and urllib3 exceptions become segsync errors by status, never echoing bodies or headers."""

from __future__ import annotations

import json
import re
import traceback
from typing import Any

import pytest
import urllib3
from hubspot.crm.associations.v4.exceptions import ServiceException
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.lists.exceptions import ForbiddenException, NotFoundException, UnauthorizedException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from segsync import (
    AuthError,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
)
from segsync.sandbox import Request, Response, SeedData
from segsync_hubspot.client import safe_host, translated

SECRET_BITS = ("bob@example.com", "pat-na1-secret", "Bearer")
CORRELATION = "aa0b6e4c-0d3a-4d5e-9a4b-2f6f0c4d1e11"


class _Resp:
    """The bits of urllib3's response the SDK's exceptions read."""

    def __init__(
        self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.reason = "Reason with bob@example.com"
        raw = body if isinstance(body, str) else json.dumps(body)
        self.data = raw.encode()
        self._headers = {"Authorization": "Bearer pat-na1-secret", **(headers or {})}

    def getheaders(self) -> dict[str, str]:
        return self._headers


def _raise(exc: BaseException) -> PlatformError:
    with (
        pytest.raises(PlatformError) as info,
        translated("contacts.write", host="https://api.hubapi.com", timeout=5),
    ):
        raise exc
    err = info.value
    text = str(err) + "".join(traceback.format_exception(err))
    for bit in SECRET_BITS:
        assert bit not in text, f"{bit!r} leaked into {text!r}"
    assert "\n" not in str(err), "one line"
    assert str(err).startswith("hubspot: contacts.write: ")
    return err


def _body(category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "Contact bob@example.com is invalid",
        "correlationId": CORRELATION,
        "category": category,
        **extra,
    }


def test_401_is_an_auth_error() -> None:
    err = _raise(UnauthorizedException(http_resp=_Resp(401, _body("INVALID_AUTHENTICATION"))))
    assert isinstance(err, AuthError)
    assert err.status == 401
    assert err.category == "INVALID_AUTHENTICATION"
    assert err.correlation_id == CORRELATION
    assert "SEGSYNC_HUBSPOT_TOKEN" in str(err)


@pytest.mark.parametrize(
    ("body", "scopes"),
    [
        (_body("MISSING_SCOPES", context={"requiredScopes": ["crm.lists.write"]}), ("crm.lists.write",)),
        (
            _body(
                "MISSING_SCOPES",
                errors=[
                    {"message": "x", "context": {"requiredScopes": ["crm.lists.read", "crm.lists.write"]}}
                ],
            ),
            ("crm.lists.read", "crm.lists.write"),
        ),
        (_body("MISSING_SCOPES"), ()),
        ("<html>forbidden</html>", ()),
    ],
)
def test_403_names_the_missing_scopes(body: dict[str, Any] | str, scopes: tuple[str, ...]) -> None:
    err = _raise(ForbiddenException(http_resp=_Resp(403, body)))
    assert isinstance(err, PermissionDenied)
    assert err.required_scopes == scopes
    for scope in scopes:
        assert scope in str(err)


@pytest.mark.parametrize(
    ("policy", "headers", "wait"),
    [
        ("TEN_SECONDLY_ROLLING", {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, 10.0),
        ("TEN_SECONDLY_ROLLING", {"Retry-After": "3"}, 3.0),
        ("SECONDLY", {}, 1.0),  # the search API's one-second window
        ("DAILY", {}, 3600.0),
        ("DAILY", {"Retry-After": "120"}, 120.0),
    ],
)
def test_429_is_rate_limited_with_the_wait(policy: str, headers: dict[str, str], wait: float) -> None:
    body = {"status": "error", "message": "limit", "errorType": "RATE_LIMIT", "policyName": policy}
    err = _raise(ContactsApiException(http_resp=_Resp(429, body, headers)))
    assert isinstance(err, RateLimited)
    assert err.retry_after == wait
    assert err.category == "RATE_LIMIT"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 423, 477, 408, 425])
def test_server_trouble_is_transient(status: int) -> None:
    err = _raise(ServiceException(http_resp=_Resp(status, _body("INTERNAL_ERROR"))))
    assert isinstance(err, TransientError)
    assert err.status == status


@pytest.mark.parametrize(
    ("exc_type", "status"),
    [
        (PropertiesApiException, 400),
        (NotFoundException, 404),
        (PropertiesApiException, 409),
        (ContactsApiException, 422),
    ],
)
def test_refusals_are_permanent_and_keep_category(exc_type: type[Exception], status: int) -> None:
    err = _raise(exc_type(http_resp=_Resp(status, _body("VALIDATION_ERROR"))))  # type: ignore[call-arg]
    assert isinstance(err, PermanentError)
    assert err.status == status
    assert err.category == "VALIDATION_ERROR"
    assert CORRELATION in str(err)


def test_a_tls_failure_without_status_is_permanent() -> None:
    err = _raise(ContactsApiException(status=0, reason="SSLError certificate for bob@example.com"))
    assert isinstance(err, PermanentError)


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (urllib3.exceptions.NewConnectionError(None, "refused bob@example.com"), "could not connect"),  # type: ignore[arg-type]
        (
            urllib3.exceptions.ReadTimeoutError(None, "/x?email=bob@example.com", "read timed out"),  # type: ignore[arg-type]
            "no answer",
        ),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            "failed mid-request",
        ),
        (
            urllib3.exceptions.MaxRetryError(None, "/x", urllib3.exceptions.NewConnectionError(None, "no")),  # type: ignore[arg-type]
            "could not connect",
        ),
        (ConnectionResetError("reset by peer"), "failed mid-request"),
    ],
)
def test_network_failures_are_transient(exc: BaseException, words: str) -> None:
    err = _raise(exc)
    assert isinstance(err, TransientError)
    assert words in str(err)
    assert "https://api.hubapi.com" in str(err)


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), translated("x", host="h", timeout=1):
        raise KeyError("bug")


def test_safe_host_drops_credentials_and_paths() -> None:
    assert safe_host("https://user:pw@api.example.com:8443/crm?token=1") == "https://api.example.com:8443"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "-1", "1e999", "many", ""],
    ids=["nan", "inf", "negative", "huge", "text", "empty"],
)
def test_unreadable_rate_limit_headers_count_as_absent(make_sandbox, make_platform, small_data, value):
    """Regression (issue 7.4): ``X-HubSpot-RateLimit-Remaining: nan`` crashed the sync (ValueError)."""
    sandbox = make_sandbox(small_data)
    sandbox.header_overrides = {
        "X-HubSpot-RateLimit-Remaining": value,
        "X-HubSpot-RateLimit-Interval-Milliseconds": value,
        "X-HubSpot-RateLimit-Daily-Remaining": value,
    }
    platform = make_platform(sandbox)
    contacts = list(platform.iter_contacts(["firstname"], [], {}))
    assert len(contacts) == len(small_data.contacts)
    assert platform.runner.stats.waited_seconds == 0


@pytest.mark.e2e
@pytest.mark.parametrize("raw", [b"not json", b"", b'{"list": {"listId": "1"'])
def test_an_unreadable_success_is_transient_and_retried(make_sandbox, make_platform, raw: bytes) -> None:
    """segsync.sync.http's rule: a 2xx that cannot be read may or may not have been applied."""
    sb = make_sandbox(SeedData([], []), log=False)  # deliberately off-spec

    def unreadable(req: Request, m: re.Match[str]) -> Response:
        return Response(200, raw, {"Content-Type": "application/json"})

    sb.server.routes.insert(0, ("GET", re.compile(r"^/crm/v3/lists/(\d+)$"), unreadable))
    platform = make_platform(sb)
    with pytest.raises(TransientError, match="could not be read") as caught:
        platform.get_list("1")
    assert caught.value.status == 200
    assert platform.runner.stats.retries == platform.runner.policy.max_attempts - 1
