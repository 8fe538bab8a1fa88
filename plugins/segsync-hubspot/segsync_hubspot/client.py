"""The hubspot-api-client SDK, wired for segsync: no SDK retries, explicit timeouts, one error map.

Every SDK call goes through :meth:`HubSpotClient.call`, which runs it inside
``runner.call`` (segsync's one retry layer and throttle) and inside :func:`translated`, the
one place SDK and urllib3 exceptions become segsync errors. Those errors keep the status, the
vendor category and the correlation id, and never the exception text, body or headers: they
carry the token's echo and CRM PII.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import hubspot
import urllib3
from pydantic import SecretStr
from urllib3.util.retry import Retry

from segsync import (
    AuthError,
    CallRunner,
    PermanentError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    SegsyncError,
    TransientError,
    error_class,
    header,
    header_count,
    header_number,
)
from segsync_hubspot.config import HubSpotSettings

PLATFORM = "hubspot"
BUCKET = "default"
#: CRM search has its own per-second limit, outside the ten-secondly one (crm-api-facts §1.4).
SEARCH_BUCKET = "search"

#: urllib3 must not retry either: connect/read errors, redirects and statuses all surface at once,
#: so each runner attempt is exactly one HTTP request.
NO_RETRIES = Retry(total=0, connect=0, read=0, status=0, other=0, redirect=False, raise_on_status=False)

#: When a 429 says nothing about the wait: the daily budget comes back at the portal's midnight,
#: which segsync cannot know, so it waits long enough to pause the job and resume later.
DAILY_LIMIT_WAIT = 3600.0
DEFAULT_INTERVAL = 10.0

#: SDK sub-APIs by short name; each is built once (every SDK property access builds a new pool).
_APIS: dict[str, tuple[str, ...]] = {
    "contacts": ("crm", "contacts", "basic_api"),
    "contacts_batch": ("crm", "contacts", "batch_api"),
    "contacts_search": ("crm", "contacts", "search_api"),
    "deals": ("crm", "deals", "basic_api"),
    "deals_search": ("crm", "deals", "search_api"),
    "pipelines": ("crm", "pipelines", "pipelines_api"),
    "associations": ("crm", "associations", "v4", "batch_api"),
    "properties": ("crm", "properties", "core_api"),
    "properties_batch": ("crm", "properties", "batch_api"),
    "groups": ("crm", "properties", "groups_api"),
    "lists": ("crm", "lists", "lists_api"),
    "memberships": ("crm", "lists", "memberships_api"),
}


def safe_host(base_url: str) -> str:
    """scheme://host[:port] of a base URL: no credentials, path or query end up in messages."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _api_status(exc: BaseException) -> int | None:
    """The HTTP status of one of the SDK's ~60 generated ``ApiException`` classes, else None."""
    if any(c.__name__ == "ApiException" and c.__module__.startswith("hubspot.") for c in type(exc).__mro__):
        status = getattr(exc, "status", None)
        return int(status) if isinstance(status, int) else 0
    return None


def _body(exc: BaseException) -> Mapping[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _json(body: bytes | None) -> Any:
    """A raw answer's JSON object, or None when it is not one."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _read_whole(api_client: Any) -> bool:
    """Whether the answer the SDK just read was JSON: it makes an empty model out of anything else."""
    raw = getattr(getattr(api_client, "last_response", None), "data", None)
    if not isinstance(raw, str | bytes):
        return True
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _header(exc: BaseException, name: str) -> str | None:
    return header(getattr(exc, "headers", None), name)


def required_scopes(body: Mapping[str, Any]) -> list[str]:
    """Scopes a 403 names: ``context.requiredScopes`` at the top or in ``errors[].context``."""
    found: list[str] = []
    contexts = [body.get("context")] + [
        e.get("context") for e in body.get("errors") or () if isinstance(e, dict)
    ]
    for ctx in contexts:
        if isinstance(ctx, dict):
            found.extend(str(s) for s in ctx.get("requiredScopes") or ())
    return list(dict.fromkeys(found))


#: HubSpot's words for each error class :func:`segsync.sync.http.error_class` picks; a 429's are
#: made from its policy, a 403's also name the missing scopes.
_MESSAGES: dict[type[PlatformError], str] = {
    AuthError: "HubSpot rejected the token; set SEGSYNC_HUBSPOT_TOKEN to a current private-app access token",
    PermissionDenied: (
        "the HubSpot private app lacks permission for this call; add the scopes under "
        "Settings > Integrations > Private apps, then run segsync check"
    ),
    TransientError: "HubSpot answered {status}; the call may succeed later",
    PermanentError: "HubSpot refused the request",
}


def _rate_limit_wait(exc: BaseException, policy: str) -> float:
    """Retry-After when sent (it is documented for 477 only); else the daily reset or the interval."""
    wait = header_number(_header(exc, "Retry-After"))
    if wait is not None:
        return wait
    if policy == "DAILY":
        return DAILY_LIMIT_WAIT
    if policy == "SECONDLY":  # the search API's per-second limit (crm-api-facts §1.4)
        return 1.0
    interval = header_number(_header(exc, "X-HubSpot-RateLimit-Interval-Milliseconds"))
    return interval / 1000 if interval else DEFAULT_INTERVAL


def translate_status(operation: str, exc: BaseException, status: int) -> PlatformError:
    """The segsync error for an SDK ``ApiException`` with this status."""
    body = _body(exc)
    category = body.get("category") or body.get("errorType")
    kw: dict[str, Any] = {
        "platform": PLATFORM,
        "operation": operation,
        "status": status or None,
        "category": str(category) if category else None,
        "correlation_id": str(body["correlationId"]) if body.get("correlationId") else None,
    }
    if status == 0:  # the SDK's status for an SSLError: no HTTP answer, and no retry can mend it
        return PermanentError(
            "no TLS connection to HubSpot could be made; check base_url and the certificate store", **kw
        )
    # An ApiException is never a usable success: a 2xx here is one the SDK could not read.
    cls = error_class(status, readable=False) or TransientError
    if cls is RateLimited:
        policy = str(body.get("policyName") or "")
        name = policy.lower().replace("_", " ") or "API"
        return RateLimited(
            f"HubSpot's {name} rate limit was reached", retry_after=_rate_limit_wait(exc, policy), **kw
        )
    message = _MESSAGES[cls].format(status=status)
    if cls is PermissionDenied:
        return PermissionDenied(message, required_scopes=required_scopes(body), **kw)
    return cls(message, **kw)


def translate_network(operation: str, exc: BaseException, host: str, timeout: float) -> TransientError:
    """Timeouts, refused and dropped connections: retriable, named without urllib3's text."""
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        text = f"could not connect to {host}; check base_url and the network"
    elif isinstance(reason, urllib3.exceptions.TimeoutError | TimeoutError):
        text = f"no answer from {host} within {timeout:g} s"
    else:
        text = f"the connection to {host} failed mid-request"
    return TransientError(text, platform=PLATFORM, operation=operation)  # error_class(None): no answer


@contextmanager
def translated(
    operation: str, *, host: str, timeout: float, headers: Callable[[Any], None] | None = None
) -> Iterator[None]:
    """Turn anything the SDK raises into a segsync error (``from None``: no body in tracebacks).

    ``headers`` receives an error answer's headers first (rate-limit counters come on errors too).

    """
    try:
        yield
    except SegsyncError:
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise translate_network(operation, exc, host, timeout) from None
    except Exception as exc:
        status = _api_status(exc)
        if status is None:
            raise
        if headers is not None and status != 429:  # a 429's own wait is in RateLimited.retry_after
            headers(getattr(exc, "headers", None))
        raise translate_status(operation, exc, status) from None


class HubSpotClient:
    """The SDK for one account. Building it makes no network call."""

    def __init__(self, settings: HubSpotSettings, secret: SecretStr, runner: CallRunner) -> None:
        self.runner = runner
        self.timeout = settings.timeout
        self.host = safe_host(settings.api_base)
        self._sdk = hubspot.Client.create(
            access_token=secret.get_secret_value(), host=settings.api_base, retry=NO_RETRIES
        )
        self._apis: dict[str, Any] = {}

    def _api(self, name: str) -> Any:
        if name not in self._apis:
            obj: Any = self._sdk
            for attr in _APIS[name]:
                obj = getattr(obj, attr)
            self._apis[name] = obj
        return self._apis[name]

    def call(
        self,
        operation: str,
        api: str,
        method: str,
        *args: Any,
        write: bool = False,
        ok: tuple[int, ...] = (200,),
        bucket: str = BUCKET,
        raw: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Run one SDK method through the runner; return its answer as wire JSON.

        ``ok`` are the statuses the SDK maps for this method (crm-api-facts §1.2): any other
        2xx deserialises to None in the SDK. How such an answer is classified, and why, is
        :func:`segsync.sync.http.error_class`'s rule for successes the plugin cannot use.
        ``raw`` reads the answer's JSON as it came, without the SDK's models: for bulk pages,
        where building a model per record (and parsing each date with dateutil) was most of
        a sync's CPU; the SDK still sends the request and raises for error statuses.
        """
        sdk_api = self._api(api)
        fn = getattr(sdk_api, f"{method}_with_http_info")

        def attempt() -> Any:
            with translated(operation, host=self.host, timeout=self.timeout, headers=self._observe):
                if raw:
                    answer = fn(*args, _request_timeout=self.timeout, _preload_content=False, **kwargs)
                    status, headers, data = answer.status, answer.headers, _json(answer.data)
                else:
                    data, status, headers = fn(*args, _request_timeout=self.timeout, **kwargs)
            self._observe(headers)
            documented = status in ok
            if raw:
                readable = data is not None or not documented
            else:  # the SDK reads only the statuses it maps: None for another one is no read failure
                readable = (data is not None or not documented) and _read_whole(sdk_api.api_client)
            cls = error_class(status, readable=readable, documented=documented)
            if cls is not None:
                raise self._unusable(cls, operation, status, ok)
            return data if raw else sdk_api.api_client.sanitize_for_serialization(data)

        return self.runner.call(operation, attempt, bucket=bucket, write=write)

    @staticmethod
    def _unusable(
        cls: type[PlatformError], operation: str, status: int, ok: tuple[int, ...]
    ) -> PlatformError:
        """The error for a 2xx the SDK could not turn into the documented answer."""
        if cls is TransientError:
            text = "HubSpot's answer could not be read; the call may or may not have been applied"
        else:
            text = (
                f"HubSpot answered {status} where {'/'.join(map(str, ok))} with a body was expected; "
                "its API may have changed; check the result in HubSpot before running again"
            )
        return cls(text, platform=PLATFORM, operation=operation, status=status)

    def get_json(self, operation: str, path: str) -> Any:
        """GET an endpoint the SDK has no API class for, through the same transport and runner.

        The generated ApiClient sends it (token, timeout, no retries, urllib3 pool) and, unread
        (``_preload_content=False``), hands back the raw answer, whose JSON is returned.
        """
        api_client = self._api("contacts").api_client

        def attempt() -> Any:
            with translated(operation, host=self.host, timeout=self.timeout, headers=self._observe):
                raw = api_client.call_api(
                    path,
                    "GET",
                    header_params={"Accept": "application/json"},
                    auth_settings=["oauth2"],
                    _preload_content=False,
                    _return_http_data_only=True,
                    _request_timeout=self.timeout,
                )
                status, headers, payload = raw.status, raw.headers, raw.data
            self._observe(headers)
            try:
                answer, readable = json.loads(payload), True
            except ValueError:
                answer, readable = None, False
            documented = status == 200 and isinstance(answer, dict)
            cls = error_class(status, readable=readable, documented=documented)
            if cls is TransientError:
                raise self._unusable(cls, operation, status, (200,))
            if cls is not None:
                raise PermanentError(
                    "HubSpot's answer did not have the documented shape; its API may have changed",
                    platform=PLATFORM,
                    operation=operation,
                )
            return answer

        return self.runner.call(operation, attempt, bucket=BUCKET)

    def _observe(self, headers: Any) -> None:
        """Feed HubSpot's rate-limit headers to the throttle, so another app's use is respected."""
        if not headers:
            return
        # Unreadable values (``nan``, ``-1``, text) count as absent: they must not stop a sync.
        remaining = header_count(header(headers, "x-hubspot-ratelimit-remaining"))
        interval = header_number(header(headers, "x-hubspot-ratelimit-interval-milliseconds"))
        if remaining is not None:
            self.runner.observe(BUCKET, remaining=remaining, reset_after=(interval or 10_000) / 1000)
        daily = header_count(header(headers, "x-hubspot-ratelimit-daily-remaining"))
        if daily is not None:
            self.runner.observe(BUCKET, remaining=daily, reset_after=DAILY_LIMIT_WAIT)

    def close(self) -> None:
        for api in self._apis.values():
            api.api_client.rest_client.pool_manager.clear()
        self._apis.clear()
