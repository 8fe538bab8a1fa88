"""HubSpot webhook deliveries: the v3 signature check and the event array (crm-api-facts §1.11,
§1.14).

A delivery is ``POST`` with a JSON array of up to 100 events, signed with the app's client
secret: ``X-HubSpot-Signature-v3`` is base64(HMAC-SHA256(secret, method + URI + body +
timestamp)) and ``X-HubSpot-Request-Timestamp`` the milliseconds it was signed at. The check
is over the raw body bytes (re-serialised JSON or re-encoded non-ASCII breaks it), refuses a
timestamp more than five minutes away from now, and compares in constant time. The older
v1/v2 signatures carry no timestamp, so a captured request could be replayed forever: they
are refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from segsync import WebhookEvent, WebhookRefused, WebhookRequest, same_secret

SECRET_ENV = "SEGSYNC_HUBSPOT_APP_SECRET"  # noqa: S105 - a variable name, not a secret
#: HubSpot's own window (``Signature.MAX_ALLOWED_TIMESTAMP``), applied in both directions.
MAX_AGE = dt.timedelta(minutes=5)

#: HubSpot decodes these in the URI before signing; its docs list them one by one (§1.11).
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def signed_uri(url: str) -> str:
    """The URI as HubSpot puts it in the signed string: the listed escapes decoded."""
    for escaped, char in _DECODED.items():
        url = url.replace(escaped, char).replace(escaped.lower(), char)
    return url


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """The ``X-HubSpot-Signature-v3`` value HubSpot sends for this request."""
    source = method.encode() + signed_uri(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


class HubSpotWebhooks:
    """Checks and reads HubSpot deliveries (``HubSpotPlatform.webhook_receiver()``)."""

    secret_env: ClassVar[str] = SECRET_ENV
    kinds: ClassVar[Mapping[str, str]] = {
        "deal.creation": "a deal was created",
        "deal.propertyChange": "a deal property changed (amount, stage, close date...)",
        "deal.deletion": "a deal was deleted",
        "deal.associationChange": "a deal was linked to or unlinked from a contact",
        "deal.merge": "two deals were merged",
        "deal.restore": "a deleted deal was restored",
        "contact.creation": "a contact was created",
        "contact.propertyChange": "a contact property changed",
        "contact.deletion": "a contact was deleted",
        "contact.merge": "two contacts were merged",
        "contact.restore": "a deleted contact was restored",
    }

    def __init__(self, max_age: dt.timedelta = MAX_AGE) -> None:
        self.max_age = max_age

    def verify(self, request: WebhookRequest, secret: str, *, now: dt.datetime) -> None:
        given = request.header("X-HubSpot-Signature-v3")
        stamp = request.header("X-HubSpot-Request-Timestamp")
        if not given or not stamp:
            older = request.header("X-HubSpot-Signature")
            raise WebhookRefused(
                "unsigned",
                "no v3 signature"
                + (
                    " (a v1/v2 signature has no timestamp and can be replayed: not accepted)" if older else ""
                ),
            )
        try:
            signed_at = dt.datetime.fromtimestamp(int(stamp) / 1000, dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise WebhookRefused("bad timestamp", "X-HubSpot-Request-Timestamp is not milliseconds") from None
        if abs(now - signed_at) > self.max_age:
            raise WebhookRefused(
                "stale",
                f"signed {abs(now - signed_at).total_seconds():.0f} s away from now (more than "
                f"{self.max_age.total_seconds():.0f} s): a replay, or this host's clock is off",
            )
        expected = signature_v3(secret, request.method, request.url, request.body, stamp)
        if not same_secret(given, expected):
            raise WebhookRefused(
                "bad signature",
                "the v3 signature does not match: check SEGSYNC_HUBSPOT_APP_SECRET (the app's client "
                "secret) and that serve --public-url is the target URL HubSpot posts to",
            )

    def parse(self, request: WebhookRequest) -> Sequence[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            raise ValueError("a HubSpot delivery is a JSON array of event objects")
        return [_event(e) for e in body]


def _event(raw: Mapping[str, Any]) -> WebhookEvent:
    kind = str(raw.get("subscriptionType") or "unknown")
    if kind.startswith("object.") and raw.get("objectName"):  # the generic form (orders, carts)
        kind = f"{raw['objectName']}.{kind.partition('.')[2]}"
    event_id = raw.get("eventId")
    if event_id is None:
        key = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    else:
        key = str(event_id)
    occurred = raw.get("occurredAt")
    when = None
    if isinstance(occurred, int | float) and 0 < occurred < 2**53:
        when = dt.datetime.fromtimestamp(occurred / 1000, dt.UTC)
    extra = {k: str(raw[k]) for k in ("changeSource", "attemptNumber") if raw.get(k) is not None}
    return WebhookEvent(
        key=key,
        kind=kind,
        object_id=None if raw.get("objectId") is None else str(raw["objectId"]),
        occurred_at=when,
        account=None if raw.get("portalId") is None else str(raw["portalId"]),
        property_name=None if raw.get("propertyName") is None else str(raw["propertyName"]),
        extra=extra,
    )


__all__ = ["MAX_AGE", "SECRET_ENV", "HubSpotWebhooks", "signature_v3", "signed_uri"]
