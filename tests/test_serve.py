"""``segsync serve`` and ``segsync watch`` end to end: a store integration sells through the
sandbox's API (HubSpot's own SDK), the sandbox sends the webhook signed as HubSpot signs it, the
receiver queues it, and the sync loop moves the buyer's RFM fields; forged, stale and replayed
deliveries are refused; a receiver killed with SIGKILL after acknowledging loses nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hubspot
import pytest
from hubspot.crm.deals import SimplePublicObjectInputForCreate

from segsync.cli import main
from segsync.project.app import Project
from segsync.project.loop import RunOutcome, SyncLoop
from segsync.project.serve import Service
from segsync.sandbox import demo_dataset
from segsync.sync.state import StateStore
from segsync_hubspot.sandbox import HubSpotSandbox
from segsync_hubspot.webhooks import signature_v3

TOKEN = "serve-test-token-0123456789"
APP_SECRET = "serve-test-app-secret"
TODAY = dt.date.today()
STATE = Path(".segsync/state.db")  # the default [project] state, relative to the project
TO_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotSandbox]:
    """A synced HubSpot project in ``tmp_path`` against a sandbox of 120 contacts."""
    for key in list(os.environ):
        if key.startswith("SEGSYNC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    sandbox = HubSpotSandbox(secret=TOKEN)
    sandbox.seed(demo_dataset(TODAY, contacts=120, seed=5))
    sandbox.start()
    monkeypatch.setenv("SEGSYNC_HUBSPOT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SEGSYNC_HUBSPOT_TOKEN", TOKEN)
    monkeypatch.setenv("SEGSYNC_HUBSPOT_APP_SECRET", APP_SECRET)
    assert main(["init", "--platform", "hubspot"]) == 0
    assert main(["sync", "-q"]) == 0
    try:
        yield sandbox
    finally:
        sandbox.stop()


class Outcomes:
    """The loop's runs, as they end; ``wait`` blocks until one matches."""

    def __init__(self) -> None:
        self.runs: list[RunOutcome] = []
        self._cond = threading.Condition()

    def __call__(self, outcome: RunOutcome) -> None:
        with self._cond:
            self.runs.append(outcome)
            self._cond.notify_all()

    def after(self, first: RunOutcome, later: RunOutcome) -> bool:
        ids = [id(o) for o in self.runs]
        return ids.index(id(later)) > ids.index(id(first))

    def wait(self, test: Callable[[RunOutcome], bool], timeout: float = 60.0) -> RunOutcome:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((o for o in self.runs if test(o)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"no matching run in {timeout} s: {[o.line() for o in self.runs]}"
                self._cond.wait(left)


@pytest.fixture
def service(hub: HubSpotSandbox) -> Iterator[tuple[Service, Outcomes]]:
    outcomes = Outcomes()
    loop = SyncLoop(Project(None), ["hubspot"], every=None, debounce=0.2)
    svc = Service(Project(None), loop, on_outcome=outcomes)
    svc.start()
    hub.subscribe_webhooks(svc.url + "/webhooks/hubspot", APP_SECRET)
    try:
        yield svc, outcomes
    finally:
        svc.shutdown()
        svc.join(10)
        loop.close()


def sell(sandbox: HubSpotSandbox, contact_id: str, amount: str) -> str:
    """A store integration's sale: HubSpot's SDK creating a won deal with its contact inline."""
    client = hubspot.Client.create(access_token=TOKEN, host=sandbox.base_url)
    deal = SimplePublicObjectInputForCreate(
        properties={
            "dealname": "Web order",
            "amount": amount,
            "closedate": f"{TODAY.isoformat()}T09:00:00Z",
            "dealstage": "closedwon",
            "pipeline": "default",
        },
        associations=[{"to": {"id": contact_id}, "types": TO_CONTACT}],
    )
    return str(client.crm.deals.basic_api.create(simple_public_object_input_for_create=deal).id)


def one_time_buyer(sandbox: HubSpotSandbox) -> str:
    return next(
        cid
        for cid in sorted(sandbox.account.contacts, key=int)
        if sandbox.contact_values(cid).get("segsync_order_count") == "1"
    )


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
        return bytes(resp.read())


def signed(url: str, body: bytes, *, secret: str = APP_SECRET, age: float = 0.0) -> dict[str, str]:
    stamp = str(int((time.time() - age) * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature_v3(secret, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def event_body(event_id: int, kind: str = "contact.creation", object_id: int = 1, portal: int = 0) -> bytes:
    """One event; ``portal`` 0 is the sandbox's own portal (derived from the token)."""
    return json.dumps(
        [
            {
                "eventId": event_id,
                "subscriptionId": 1,
                "portalId": portal or int(HubSpotSandbox.derive_account_id(TOKEN)),
                "appId": 1,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": kind,
                "attemptNumber": 0,
                "objectId": object_id,
            }
        ]
    ).encode()


# -- serve ---------------------------------------------------------------------------------


def test_a_sale_through_the_api_reaches_the_buyers_fields_through_serve(hub, service):
    svc, outcomes = service
    buyer = one_time_buyer(hub)
    sell(hub, buyer, "75.00")
    run = outcomes.wait(lambda o: o.status == "succeeded" and o.trigger == "events")
    assert hub.contact_values(buyer)["segsync_order_count"] == "2"
    assert run.report is not None
    # the new deal, and any changed in the cursor's one-second overlap with the first sync
    assert 1 <= run.report.purchases_pulled <= 5, "only the changed deals were read"
    assert 1 <= run.report.contacts_written <= 12, "only contacts whose values changed were written"
    assert run.lags
    assert all(0 <= lag < 60 for lag in run.lags)
    # segsync's own writes come back as contact.propertyChange events: acknowledged, ignored,
    # and no second sync for them.
    assert hub.webhooks is not None
    assert hub.webhooks.flush(10)
    time.sleep(0.6)
    assert [o.trigger for o in outcomes.runs] == ["events"]
    metrics = get(svc.url + "/metrics").decode()
    assert 'segsync_webhook_events_total{outcome="ignored",platform="hubspot"}' in metrics
    assert 'segsync_syncs_total{platform="hubspot",status="succeeded"} 1.0' in metrics
    assert "segsync_event_lag_seconds_count" in metrics
    health = json.loads(get(svc.url + "/healthz"))
    assert health == {"status": "ok", "pending_events": {"hubspot": 0}}


def test_a_burst_of_events_costs_a_few_syncs(hub, service):
    svc, outcomes = service
    url = svc.url + "/webhooks/hubspot"
    for n in range(0, 2000, 100):  # 2,000 events in 20 deliveries of 100, as HubSpot batches them
        events = [json.loads(event_body(10_000 + n + i))[0] for i in range(100)]
        body = json.dumps(events).encode()
        assert post(url, body, signed(url, body))[0] == 200
    outcomes.wait(lambda o: o.status == "succeeded")
    time.sleep(0.5)
    assert len(outcomes.runs) <= 3
    with StateStore(STATE) as store:
        assert store.pending_events("hubspot").count == 0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda url, body: signed(url, body, secret="not-the-app-secret"), "bad signature"),
        (lambda url, body: signed(url, body, age=400), "stale"),
        (lambda url, body: signed(url, body, age=-400), "stale"),
        (lambda url, body: {"X-HubSpot-Signature": "abc", "X-HubSpot-Signature-Version": "v1"}, "unsigned"),
        (lambda url, body: signed(url.replace("/webhooks/", "/elsewhere/"), body), "bad signature"),
    ],
    ids=["forged", "old", "future", "v1", "other-url"],
)
def test_forged_and_stale_deliveries_are_refused(hub, service, make, reason, caplog):
    svc, outcomes = service
    url = svc.url + "/webhooks/hubspot"
    body = event_body(1)
    status, reply = post(url, body, make(url, body))
    assert (status, reply) == (401, {"error": reason})
    assert body.decode() not in caplog.text, "refusals are logged without their bodies"
    with StateStore(STATE) as store:
        assert store.pending_events("hubspot").count == 0
    metrics = get(svc.url + "/metrics").decode()
    assert f'segsync_webhook_refused_total{{platform="hubspot",reason="{reason}"}} 1.0' in metrics


def test_a_replayed_delivery_is_refused_and_a_redelivery_queued_once(hub, service):
    svc, outcomes = service
    url = svc.url + "/webhooks/hubspot"
    body = event_body(77)
    headers = signed(url, body)
    assert post(url, body, headers) == (200, {"queued": 1, "duplicates": 0, "ignored": 0})
    assert post(url, body, headers) == (401, {"error": "replayed"})
    # HubSpot's own redelivery: same eventId, a new attempt number, signed again
    again = body.replace(b'"attemptNumber": 0', b'"attemptNumber": 1')
    assert post(url, again, signed(url, again)) == (200, {"queued": 0, "duplicates": 1, "ignored": 0})


def test_bad_bodies_and_unknown_platforms(hub, service):
    svc, _ = service
    url = svc.url + "/webhooks/hubspot"
    body = b'{"not": "an array"}'
    assert post(url, body, signed(url, body))[0] == 400
    assert post(svc.url + "/webhooks/brevo", b"[]", {})[0] == 404


def test_serve_refuses_to_start_without_the_app_secret(hub, monkeypatch, capsys):
    monkeypatch.delenv("SEGSYNC_HUBSPOT_APP_SECRET")
    assert main(["serve", "--port", "0"]) == 2
    assert "set SEGSYNC_HUBSPOT_APP_SECRET" in capsys.readouterr().err


# -- watch -----------------------------------------------------------------------------------


def test_a_sale_reaches_the_buyers_fields_through_watch(hub):
    outcomes = Outcomes()
    loop = SyncLoop(Project(None), ["hubspot"], every=0.3, on_outcome=outcomes)
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    try:
        outcomes.wait(lambda o: o.status == "succeeded")
        buyer = one_time_buyer(hub)
        sell(hub, buyer, "40.00")
        run = outcomes.wait(lambda o: o.report is not None and o.report.contacts_written >= 1)
        assert hub.contact_values(buyer)["segsync_order_count"] == "2"
        quiet = outcomes.wait(lambda o: o.report is not None and outcomes.after(run, o))
    finally:
        loop.stop.set()
        loop.poke()
        worker.join(10)
        loop.close()
    assert quiet.report is not None
    assert quiet.report.contacts_written == 0, "nothing written without a change"


# -- processes: SIGTERM and SIGKILL -------------------------------------------------------------


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "segsync.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed; output: {''.join(seen)}")


def test_watch_stops_cleanly_on_sigterm(hub):
    proc = _spawn("watch", "--every", "1s")
    try:
        _read_until(proc, "succeeded")
        proc.send_signal(signal.SIGTERM)
        _read_until(proc, "segsync watch: stopped")
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_events_acknowledged_before_a_sigkill_are_synced_after_the_restart(hub):
    proc = _spawn("serve", "--port", "0", "--every", "off", "--debounce", "10m")
    try:
        line = _read_until(proc, "listening on")
        found = re.search(r"http://[\d.]+:\d+", line)
        assert found is not None
        target = found[0] + "/webhooks/hubspot"
        body = event_body(4242)
        assert post(target, body, signed(target, body))[0] == 200
        proc.kill()  # SIGKILL between acknowledging and syncing
        proc.wait(30)
    finally:
        proc.kill()
    with StateStore(STATE) as store:
        assert store.pending_events("hubspot").count == 1, "the acknowledged event was committed"
    proc = _spawn("serve", "--port", "0", "--every", "off", "--debounce", "0.1s")
    try:
        done = _read_until(proc, "succeeded")
        assert "(events)" in done
        assert "1 event(s) settled" in done
        proc.send_signal(signal.SIGTERM)
        _read_until(proc, "segsync serve: stopped")
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    with StateStore(STATE) as store:
        assert store.pending_events("hubspot").count == 0


def test_a_sync_asked_to_stop_ends_at_a_checkpoint_and_the_next_one_finishes_it(tmp_path, monkeypatch):
    from segsync.errors import SyncStopped
    from segsync.project.run import sync_project

    def synced_values(folder: Path, stop_after: int | None) -> dict[str, dict[str, str]]:
        folder.mkdir()
        monkeypatch.chdir(folder)
        sandbox = HubSpotSandbox(secret=TOKEN)
        sandbox.seed(demo_dataset(TODAY, contacts=300, seed=8))
        sandbox.start()
        try:
            monkeypatch.setenv("SEGSYNC_HUBSPOT_BASE_URL", sandbox.base_url)
            monkeypatch.setenv("SEGSYNC_HUBSPOT_TOKEN", TOKEN)
            assert main(["init", "--platform", "hubspot"]) == 0
            if stop_after is not None:
                asked = iter(range(10_000))
                project = Project(None)
                with pytest.raises(SyncStopped):
                    sync_project(
                        project.config,
                        "hubspot",
                        registry=project.registry,
                        as_of=TODAY,
                        should_stop=lambda: next(asked) >= stop_after,
                    )
                with StateStore(STATE) as store:
                    [job] = store.recent_jobs(1)
                    assert job.status == "interrupted"
                    assert job.report is not None
                    assert job.report.phase == "apply"
                    assert job.report.contacts_written == 100, "stopped after the first write batch"
            assert main(["sync", "-q"]) == 0
            return {
                c: {k: v for k, v in sandbox.contact_values(c).items() if k.startswith("segsync_")}
                for c in sandbox.account.contacts
            }
        finally:
            sandbox.stop()

    stopped = synced_values(tmp_path / "stopped", stop_after=30)
    whole = synced_values(tmp_path / "whole", stop_after=None)
    assert stopped == whole
    assert sum(1 for values in whole.values() if values.get("segsync_rfm_segment")) > 250


def test_events_of_another_portal_are_acknowledged_and_ignored(hub, service):
    svc, _ = service
    url = svc.url + "/webhooks/hubspot"
    ours = json.loads(event_body(501))[0] | {"portalId": int(hub.account_id)}
    theirs = json.loads(event_body(502))[0] | {"portalId": 99}
    body = json.dumps([ours, theirs]).encode()
    assert post(url, body, signed(url, body)) == (200, {"queued": 1, "duplicates": 0, "ignored": 1})


def test_behind_a_proxy_the_signature_covers_the_public_url(hub, service):
    """HubSpot signs the URL it posted to; behind TLS termination the receiver sees another."""
    svc, _ = service
    app = type(svc.app)(svc.loop, svc.endpoints, svc.metrics, public_url="https://hooks.example.com/")
    body = event_body(900)
    public = "https://hooks.example.com/webhooks/hubspot"

    def deliver(headers: dict[str, str]) -> str:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/webhooks/hubspot",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": __import__("io").BytesIO(body),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "10.0.0.7:8080",
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }
        statuses: list[str] = []
        app(environ, lambda status, headers: statuses.append(status))
        return statuses[0]

    assert deliver(signed("http://10.0.0.7:8080/webhooks/hubspot", body)) == "401 Unauthorized"
    assert deliver(signed(public, body)) == "200 OK"
