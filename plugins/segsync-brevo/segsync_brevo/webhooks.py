"""Brevo webhook deliveries: the token check and the events (crm-api-facts §2.10).

Brevo signs nothing (no HMAC is documented). A webhook created with ``"auth": {"type":
"bearer", "token": ...}`` sends ``Authorization: Bearer <token>``; one whose URL carries
``https://user:token@host/...`` sends HTTP basic auth. Either is accepted when the token (the
basic-auth password) equals ``SEGSYNC_BREVO_WEBHOOK_TOKEN``, compared in constant time. With no
timestamp to check, a captured delivery could be sent again: ``serve`` refuses a body it has
already accepted, and an event it has queued is queued once.

Brevo's marketing webhooks cover contacts only (``contact_updated``, ``contact_deleted``,
``list_addition``...): deals and e-commerce orders have none, so ``serve`` also syncs on a timer
(``--every``) to pick purchases up.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from segsync import WebhookEvent, WebhookRefused, WebhookRequest, same_secret

SECRET_ENV = "SEGSYNC_BREVO_WEBHOOK_TOKEN"  # noqa: S105 - a variable name, not a secret


class BrevoWebhooks:
    """Checks and reads Brevo deliveries (``BrevoPlatform.webhook_receiver()``)."""

    secret_env: ClassVar[str] = SECRET_ENV
    kinds: ClassVar[Mapping[str, str]] = {
        "contact_updated": "a contact's attributes or lists changed",
        "contact_deleted": "a contact was deleted",
        "list_addition": "a contact was added to a list",
        "unsubscribed": "a contact unsubscribed",
    }

    def verify(self, request: WebhookRequest, secret: str, *, now: dt.datetime) -> None:
        auth = request.header("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            given = value.strip()
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                raise WebhookRefused("bad token", "the basic-auth credentials are not base64") from None
        else:
            raise WebhookRefused(
                "unsigned", "no bearer token or basic auth: create the webhook with auth type bearer"
            )
        if not same_secret(given, secret):
            raise WebhookRefused(
                "bad token", "the token does not match SEGSYNC_BREVO_WEBHOOK_TOKEN (the webhook's auth)"
            )

    def parse(self, request: WebhookRequest) -> Sequence[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        items = body if isinstance(body, list) else [body]  # "batched": true sends an array
        if not items or not all(isinstance(e, dict) for e in items):
            raise ValueError("a Brevo delivery is an event object or an array of them")
        return [_event(e) for e in items]


def _event(raw: Mapping[str, Any]) -> WebhookEvent:
    # No event id exists: the whole event, hashed, recognises a repeat (it holds the e-mail
    # address, so only the hash is kept).
    key = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    when = None
    stamp = raw.get("ts_event", raw.get("ts"))
    if isinstance(stamp, int | float) and 0 < stamp < 2**40:
        when = dt.datetime.fromtimestamp(stamp, dt.UTC)
    elif isinstance(raw.get("date"), str):
        try:
            when = dt.datetime.fromisoformat(raw["date"])
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        except ValueError:
            when = None
    contact = raw.get("contact_id", raw.get("id"))
    return WebhookEvent(
        key=key,
        kind=str(raw.get("event") or "unknown"),
        object_id=None if contact is None else str(contact),
        occurred_at=when,
    )


__all__ = ["SECRET_ENV", "BrevoWebhooks"]
