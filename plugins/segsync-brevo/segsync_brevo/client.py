"""brevo-python wired for segsync: no SDK retries, no OAuth surprises, one error map, paging.

Every SDK call goes through :meth:`BrevoClient.call`: inside ``runner.call`` (segsync's one
retry layer and throttle), inside :func:`translated` (the one place SDK and httpx exceptions
become segsync errors), and it feeds Brevo's ``x-sib-ratelimit-*`` headers back to the runner.
Errors keep the status and Brevo's error ``code``; never the exception text, body or headers,
which echo the API key's account data and contact PII.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from brevo import Brevo
from brevo.core.api_error import ApiError
from brevo.core.http_response import HttpResponse
from brevo.core.parse_error import ParsingError
from brevo.core.request_options import RequestOptions
from pydantic import SecretStr

from segsync import (
    AuthError,
    CallRunner,
    OffsetCursor,
    OffsetPaging,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TransientError,
    error_class,
    header,
    header_count,
    header_number,
)

PLATFORM = "brevo"
SECRET_ENV = "SEGSYNC_BREVO_API_KEY"  # noqa: S105 - the variable name, not a secret

#: Passed on every call as well as to the constructor: a retry inside the SDK would re-send
#: non-idempotent POSTs (imports, list adds) and hide 429 pacing from the runner.
NO_RETRY: RequestOptions = {"max_retries": 0}


def _code(body: Any) -> str | None:
    """Brevo's error ``code`` (an enum like ``document_not_found``): safe to keep, never PII."""
    if isinstance(body, Mapping):
        code = body.get("code")
        if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64:
            return code
    return None


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    """A header in seconds; unreadable values (``nan``, ``-1``, text) count as absent."""
    return header_number(header(headers, name))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a 429 asks for: ``x-sib-ratelimit-reset`` (seconds), else a numeric Retry-After."""
    reset = _seconds(headers, "x-sib-ratelimit-reset")
    return reset if reset is not None else _seconds(headers, "retry-after")


#: Brevo's words for each error class :func:`segsync.sync.http.error_class` picks; ``{detail}`` is
#: Brevo's error code, when it sent one.
_MESSAGES: dict[type[PlatformError], str] = {
    AuthError: (
        f"Brevo rejected the API key{{detail}}; set {SECRET_ENV} to a valid key "
        "(Brevo: SMTP & API > API keys)"
    ),
    PermissionDenied: (
        "the API key may not call this endpoint{detail}; check the key's permissions and the "
        "account's authorised IP addresses (Brevo: Security > Authorised IPs)"
    ),
    RateLimited: "Brevo's rate limit was reached{detail}",
    TransientError: "Brevo failed to answer{detail}; retrying later may work",
    PermanentError: "Brevo refused the call{detail}",
}


def from_api_error(exc: ApiError, operation: str) -> PlatformError:
    """The segsync error for an SDK ``ApiError`` (typed subclasses included), by status.

    The SDK raises it with a 2xx status when the success body is not JSON: unreadable.
    """
    status = exc.status_code
    code = _code(exc.body)
    cls = error_class(status, readable=False) or TransientError
    kw: dict[str, Any] = {"platform": PLATFORM, "operation": operation, "status": status, "category": code}
    if status is not None and 200 <= status < 300:
        return cls("Brevo sent an unreadable success response", **kw)
    message = _MESSAGES[cls].format(detail=f" ({code})" if code else "")
    if cls is RateLimited:
        return RateLimited(message, retry_after=_retry_after(exc.headers or {}), **kw)
    return cls(message, **kw)


@contextmanager
def translated(operation: str, base_url: str) -> Iterator[None]:
    """Re-raise SDK and transport exceptions as segsync errors, without their text."""
    try:
        yield
    except ApiError as exc:
        raise from_api_error(exc, operation) from None
    except ParsingError as exc:
        # Read whole, but not the shape the spec gives: the API changed (segsync.sync.http's 2xx rule).
        status = exc.status_code
        cls = error_class(status if status is not None else 200, documented=False) or PermanentError
        raise cls(
            "Brevo's response did not have the documented shape",
            platform=PLATFORM,
            operation=operation,
            status=status,
        ) from None
    except httpx.TimeoutException as exc:
        raise TransientError(
            f"no answer from {base_url} in time ({type(exc).__name__})",
            platform=PLATFORM,
            operation=operation,
        ) from None
    except httpx.TransportError as exc:
        raise TransientError(
            f"the connection to {base_url} failed ({type(exc).__name__}); check the base URL and the network",
            platform=PLATFORM,
            operation=operation,
        ) from None
    except json.JSONDecodeError:  # a body the SDK read itself: error_class(2xx, readable=False)
        raise TransientError(
            "Brevo sent a response that is not JSON", platform=PLATFORM, operation=operation
        ) from None


@dataclass(frozen=True)
class Reply:
    """One answer: the JSON body as sent on the wire (None when empty) and the headers."""

    body: Any
    headers: Mapping[str, str]

    @property
    def server_time(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "date"), None)


def parse_http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as POSIX seconds, or None."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class BrevoClient:
    """The SDK client of one account, and the one way calls are made through the runner."""

    def __init__(self, *, api_key: SecretStr, base_url: str, timeout: float, runner: CallRunner) -> None:
        self.base_url = base_url.rstrip("/")
        self.runner = runner
        # Our own httpx client: redirects off (the api-key header would follow a redirect to
        # any host) and closable. client_id/client_secret are passed as None explicitly: the SDK
        # defaults them from BREVO_CLIENT_ID/BREVO_CLIENT_SECRET and would switch to OAuth.
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.sdk = Brevo(
            api_key=api_key.get_secret_value(),
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
            httpx_client=self._http,
            client_id=None,
            client_secret=None,
        )

    def call(
        self,
        operation: str,
        fn: Callable[[], HttpResponse[Any]],
        *,
        bucket: str,
        write: bool = False,
    ) -> Reply:
        """Run one SDK ``with_raw_response`` call through the runner; return its body and headers."""

        def attempt() -> Reply:
            with translated(operation, self.base_url):
                response = fn()
            raw, headers = response.response, response.headers
            self.runner.observe(
                bucket,
                remaining=header_count(header(headers, "x-sib-ratelimit-remaining")),
                reset_after=_seconds(headers, "x-sib-ratelimit-reset"),
            )
            try:
                body = raw.json() if raw.content else None
            except json.JSONDecodeError:
                # Cut short or not JSON: the call may or may not have been applied (segsync.sync.http).
                cls = error_class(raw.status_code, readable=False) or TransientError
                raise cls(
                    "Brevo sent a response that is not JSON",
                    platform=PLATFORM,
                    operation=operation,
                    status=raw.status_code,
                ) from None
            return Reply(body=body, headers=headers)

        return self.runner.call(operation, attempt, bucket=bucket, write=write)

    def close(self) -> None:
        self._http.close()


# -- offset paging ---------------------------------------------------------------------------

#: Where an offset-paged pull stands; ``token()`` is what a paused pull resumes from.
PageCursor = OffsetCursor


def offset_pages(
    fetch: Callable[[int, int], list[Mapping[str, Any]]],
    *,
    limit: int,
    cursor: PageCursor | None = None,
    version: Callable[[Mapping[str, Any]], str] | None = None,
    max_rewinds: int = 20,
    operation: str = "paging",
) -> Iterator[tuple[list[Mapping[str, Any]], PageCursor]]:
    """Brevo's offset paging (:class:`segsync.sync.paging.OffsetPaging`, which re-reads the last
    item seen so deletions mid-pull never skip records). ``fetch(offset, limit)`` returns one
    page; yields ``(new items, cursor after them)``."""
    paging = OffsetPaging(
        PLATFORM, operation, limit=limit, vendor="Brevo", version=version, max_rewinds=max_rewinds
    )
    return paging.pages(fetch, cursor)
