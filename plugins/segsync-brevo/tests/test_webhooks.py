"""Brevo webhooks: the bearer-token or basic-auth check, the events, and ``serve`` end to end.

Brevo has webhooks for contacts only: a deal won through the CRM API sends none, so the deal
reaches the buyer's fields with the next sync, which a contact event or the timer starts.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

import pytest
from brevo import Brevo

from segsync import WebhookRefused, WebhookRequest
from segsync.cli import main
from segsync.project.app import Project
from segsync.project.loop import RunOutcome, SyncLoop
from segsync.project.serve import Service
from segsync.sandbox import demo_dataset
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import KEY

TOKEN = "brevo-webhook-token-42"
TODAY = dt.date.today()


def request(headers: dict[str, str], body: bytes = b'{"event": "contact_updated"}') -> WebhookRequest:
    return WebhookRequest("POST", "http://x/webhooks/brevo", headers, body, dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"authorization": f"bearer {TOKEN}"},
        {"Authorization": "Basic " + base64.b64encode(f"brevo:{TOKEN}".encode()).decode()},
    ],
)
def test_the_webhook_token_is_accepted_as_bearer_or_basic_auth(headers):
    BrevoPlatform.webhook_receiver().verify(request(headers), TOKEN, now=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "unsigned"),
        ({"Authorization": "Bearer not-the-token"}, "bad token"),
        ({"Authorization": "Basic " + base64.b64encode(b"brevo:guess").decode()}, "bad token"),
        ({"Authorization": "Basic %%%"}, "bad token"),
        ({"Authorization": "Token " + TOKEN}, "unsigned"),
    ],
)
def test_a_missing_or_wrong_token_is_refused(headers, reason):
    with pytest.raises(WebhookRefused) as refused:
        BrevoPlatform.webhook_receiver().verify(request(headers), TOKEN, now=dt.datetime.now(dt.UTC))
    assert refused.value.reason == reason


def test_events_single_or_batched_are_keyed_by_their_content_not_their_email():
    one = {"event": "contact_updated", "email": "ann@example.com", "contact_id": 7, "ts_event": 1_764_000_000}
    receiver = BrevoPlatform.webhook_receiver()
    [single] = receiver.parse(request({}, json.dumps(one).encode()))
    assert (single.kind, single.object_id) == ("contact_updated", "7")
    assert single.occurred_at == dt.datetime.fromtimestamp(1_764_000_000, dt.UTC)
    assert "ann@example.com" not in repr(single)
    batch = receiver.parse(request({}, json.dumps([one, {**one, "event": "contact_deleted"}]).encode()))
    assert [e.kind for e in batch] == ["contact_updated", "contact_deleted"]
    assert batch[0].key == single.key != batch[1].key
    with pytest.raises(ValueError):
        receiver.parse(request({}, b"[]"))


def order_count(sandbox: BrevoSandbox, contact_id: str) -> object:
    return sandbox.contact(contact_id)["attributes"].get("SEGSYNC_ORDER_COUNT")


def test_a_deal_won_through_the_api_reaches_the_buyers_fields_through_serve(tmp_path: Path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("SEGSYNC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    sandbox = BrevoSandbox(secret=KEY, import_step_seconds=0.05)  # real time: imports settle fast
    sandbox.seed(demo_dataset(TODAY, contacts=25, seed=4))  # Brevo allows 10 contact calls a second
    sandbox.start()
    runs: list[RunOutcome] = []
    ran = threading.Event()
    try:
        monkeypatch.setenv("SEGSYNC_BREVO_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("SEGSYNC_BREVO_API_KEY", KEY)
        monkeypatch.setenv("SEGSYNC_BREVO_WEBHOOK_TOKEN", TOKEN)
        assert main(["init", "--platform", "brevo"]) == 0
        toml = Path("segsync.toml")  # real time: poll the sandbox's fast imports soon
        toml.write_text(
            toml.read_text().replace(
                "[platforms.brevo]\n", "[platforms.brevo]\nimport_poll_initial = 0.05\n"
            ),
            encoding="utf-8",
        )
        assert main(["sync", "-q"]) == 0
        buyer = next(str(c) for c in sandbox.contacts if order_count(sandbox, str(c)) == 1)
        loop = SyncLoop(Project(None), ["brevo"], every=None, debounce=0.2)
        svc = Service(Project(None), loop, on_outcome=lambda o: (runs.append(o), ran.set()))
        svc.start()
        sandbox.subscribe_webhooks(svc.url + "/webhooks/brevo", TOKEN)
        store = Brevo(
            api_key=KEY, base_url=sandbox.base_url, max_retries=0, client_id=None, client_secret=None
        )
        deal = store.deals.create_a_deal(
            name="Web order", attributes={"amount": 80, "close_date": f"{TODAY.isoformat()}T09:00:00Z"}
        )
        store.deals.link_and_unlink_a_deal_with_contacts_and_companies(deal.id, link_contact_ids=[int(buyer)])
        store.deals.update_a_deal(deal.id, attributes={"deal_stage": sandbox.state.stages["won"]})
        time.sleep(0.5)
        assert not runs, "a deal sends no webhook on Brevo"
        # the shop also updates the buyer's contact: that does send one
        store.contacts.update_contact(buyer, attributes={"FIRSTNAME": "Ann"})
        assert ran.wait(60)
        svc.shutdown()
        svc.join(10)
        loop.close()
    finally:
        sandbox.stop()
    run = runs[0]
    assert run.status == "succeeded", run.line()
    assert run.trigger == "events"
    # segsync's own writes come back as contact_updated (Brevo names no source): at most one
    # more sync follows, and it finds nothing to write
    assert all(o.status in ("succeeded", "stopped") for o in runs), [o.line() for o in runs]
    assert order_count(sandbox, buyer) == 2
