"""What a platform plugin gives ``segsync serve`` to receive its CRM's webhooks.

A platform class that can receive webhooks has a ``webhook_receiver()`` classmethod returning a
:class:`WebhookReceiver`. The receiver checks a delivery is genuine (signature, token, age) and
turns its body into :class:`WebhookEvent` hints. An event carries no CRM data beyond ids and
the event's kind: it only says "something changed, sync soon"; the incremental sync reads what
changed through the API, so a lost, late or repeated event can cost time but never a wrong value.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as it reached the server: the raw body bytes, never re-serialised (a
    signature is over exactly these bytes), and the URL the sender addressed."""

    method: str
    #: The full URL the CRM posted to, as it signed it (scheme, public host, path, query).
    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: dt.datetime

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class WebhookEvent:
    """One event of a delivery.

    ``key`` is unique per event across redeliveries (HubSpot's ``eventId``), so a delivery
    repeated after a timeout is recognised and queued once. ``echo`` marks an event caused by
    segsync's own writes (a change of a property segsync manages), which needs no sync.
    """

    key: str
    kind: str
    object_id: str | None = None
    occurred_at: dt.datetime | None = None
    account: str | None = None
    property_name: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class WebhookReceiver(Protocol):
    """A platform's webhook checks and parser (``PlatformClass.webhook_receiver()``)."""

    #: Environment variable holding the secret deliveries are checked with.
    secret_env: str
    #: The event kinds this platform delivers and what each means, for docs and ``serve``'s log.
    kinds: Mapping[str, str]

    def verify(self, request: WebhookRequest, secret: str, *, now: dt.datetime) -> None:
        """Return if the delivery is genuine and fresh; raise
        :class:`~segsync.errors.WebhookRefused` otherwise. Must compare in constant time."""

    def parse(self, request: WebhookRequest) -> Sequence[WebhookEvent]:
        """The events of a verified delivery; raise ValueError for a body that is not one."""


def same_secret(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality of two secrets or signatures (no early exit on the first byte)."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


__all__ = ["WebhookEvent", "WebhookReceiver", "WebhookRequest", "same_secret"]
