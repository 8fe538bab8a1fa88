"""HubSpot's v3 webhook signature, checked against the SDK's own helper, and the event array."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from hubspot.utils.signature import Signature

from segsync import WebhookRefused, WebhookRequest
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.webhooks import HubSpotWebhooks, signature_v3, signed_uri

SECRET = "the-app-client-secret"
URL = "https://hooks.example.com/webhooks/hubspot"
BODY = json.dumps(
    [
        {
            "eventId": 100,
            "subscriptionId": 7,
            "portalId": 62515,
            "appId": 54321,
            "occurredAt": 1_764_000_000_000,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "propertyName": "segsync_rfm_segment",
            "propertyValue": "Champions",
            "changeSource": "INTEGRATION",
        },
        {"eventId": 101, "subscriptionType": "deal.creation", "objectId": 9, "occurredAt": 1_764_000_000_500},
        {"eventId": 102, "subscriptionType": "object.creation", "objectName": "order", "objectId": 5},
    ],
    ensure_ascii=False,
).encode()


def request(headers: dict[str, str], *, url: str = URL, body: bytes = BODY) -> WebhookRequest:
    return WebhookRequest("POST", url, headers, body, dt.datetime.now(dt.UTC))


def signed_now(body: bytes = BODY, url: str = URL, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    return {
        "X-HubSpot-Signature-v3": signature_v3(secret, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def test_the_signature_is_the_sdks_and_the_sdk_accepts_it():
    headers = signed_now()
    stamp = headers["X-HubSpot-Request-Timestamp"]
    assert headers["X-HubSpot-Signature-v3"] == Signature.get_signature(
        SECRET, BODY.decode(), "v3", URL, "POST", stamp
    )
    assert Signature.is_valid(
        headers["X-HubSpot-Signature-v3"],
        SECRET,
        BODY.decode(),
        URL,
        "POST",
        signature_version="v3",
        timestamp=stamp,
    )
    HubSpotWebhooks().verify(request(headers), SECRET, now=dt.datetime.now(dt.UTC))


def test_non_ascii_bodies_are_checked_on_their_raw_bytes():
    body = json.dumps([{"eventId": 1, "propertyValue": "Zoë Müller"}], ensure_ascii=False).encode()
    headers = signed_now(body)
    HubSpotWebhooks().verify(request(headers, body=body), SECRET, now=dt.datetime.now(dt.UTC))
    reencoded = json.dumps(json.loads(body)).encode()  # \u escapes: another byte string
    with pytest.raises(WebhookRefused, match="does not match"):
        HubSpotWebhooks().verify(request(headers, body=reencoded), SECRET, now=dt.datetime.now(dt.UTC))


def test_escapes_hubspot_decodes_are_decoded_before_signing():
    raw = "https://hooks.example.com/webhooks/hubspot?next=%2Fa%3Ab%40c&q=%20"
    assert signed_uri(raw) == "https://hooks.example.com/webhooks/hubspot?next=/a:b@c&q=%20"
    stamp = str(int(time.time() * 1000))
    # HubSpot signs the decoded form; a receiver that hashed the raw URL would refuse it.
    source = signed_uri(raw)
    headers = {
        "X-HubSpot-Signature-v3": signature_v3(SECRET, "POST", source, BODY, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }
    HubSpotWebhooks().verify(request(headers, url=raw), SECRET, now=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "unsigned"),
        ({"X-HubSpot-Signature": "a" * 64, "X-HubSpot-Signature-Version": "v2"}, "unsigned"),
        ({"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": "soon"}, "bad timestamp"),
        (
            {"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000))},
            "bad signature",
        ),
    ],
)
def test_unsigned_and_forged_deliveries_are_refused(headers, reason):
    with pytest.raises(WebhookRefused) as refused:
        HubSpotWebhooks().verify(request(headers), SECRET, now=dt.datetime.now(dt.UTC))
    assert refused.value.reason == reason


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_five_minutes_away_is_refused(offset):
    headers = signed_now()
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    with pytest.raises(WebhookRefused) as refused:
        HubSpotWebhooks().verify(request(headers), SECRET, now=now)
    assert refused.value.reason == "stale"
    HubSpotWebhooks().verify(request(headers), SECRET, now=now - dt.timedelta(seconds=offset / 2))


def test_events_carry_ids_and_kinds_never_values():
    events = HubSpotPlatform.webhook_receiver().parse(request({}))
    assert [(e.key, e.kind, e.object_id) for e in events] == [
        ("100", "contact.propertyChange", "123"),
        ("101", "deal.creation", "9"),
        ("102", "order.creation", "5"),
    ]
    first = events[0]
    assert (first.account, first.property_name) == ("62515", "segsync_rfm_segment")
    assert first.occurred_at == dt.datetime.fromtimestamp(1_764_000_000, dt.UTC)
    assert "Champions" not in repr(events), "property values (PII) are not kept"


@pytest.mark.parametrize("body", [b"not json", b'{"eventId": 1}', b"[1, 2]"])
def test_a_body_that_is_not_an_event_array_is_refused(body):
    with pytest.raises(ValueError):
        HubSpotWebhooks().parse(request({}, body=body))
