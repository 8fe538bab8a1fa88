"""``segsync serve``: CRM webhooks in, coalesced incremental syncs out.

The receiver is a WSGI app served by waitress (threads, so a slow client never holds up
HubSpot's next delivery). ``POST /webhooks/<platform>`` checks the delivery with the platform's
:class:`~segsync.sync.webhooks.WebhookReceiver` on the raw body bytes, refuses forged, stale and
replayed ones with 401 (logged without their bodies), commits the events to the state store and
only then answers 200, and wakes the :class:`~segsync.project.loop.SyncLoop` that runs in its own
thread: a delivery never waits for a sync. ``GET /healthz`` says whether the loop lives and what
waits; ``GET /metrics`` is Prometheus' text format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segsync.errors import ConfigError, SegsyncError, WebhookRefused
from segsync.project.loop import RunOutcome, SyncLoop, stop_on_signals
from segsync.project.metrics import Metrics
from segsync.project.output import human_duration
from segsync.sync.webhooks import WebhookEvent, WebhookReceiver, WebhookRequest

if TYPE_CHECKING:
    import argparse

    from segsync.project.app import Project

log = logging.getLogger("segsync.serve")

#: A HubSpot delivery holds at most 100 events; anything near this is not a webhook.
MAX_BODY = 4 * 1024 * 1024
#: Accepted deliveries are remembered this long to refuse a replay (HubSpot's own window).
REPLAY_WINDOW = 300.0

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Endpoint:
    """One platform's webhook endpoint: its receiver, its secret, the fields segsync writes."""

    platform: str
    receiver: WebhookReceiver
    secret: str
    #: Property names segsync manages: a change to one is segsync's own write coming back.
    managed: frozenset[str]


class _Replays:
    """Digests of deliveries accepted in the last ``REPLAY_WINDOW`` seconds."""

    def __init__(self, window: float = REPLAY_WINDOW, most: int = 100_000) -> None:
        self.window, self.most = window, most
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, digest: str, now: float) -> bool:
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now - self.window or len(self._seen) > self.most
            ):
                self._seen.popitem(last=False)
            return digest in self._seen

    def add(self, digest: str, now: float) -> None:
        with self._lock:
            self._seen[digest] = now


class WebhookApp:
    """The WSGI app. ``public_url`` is the scheme and host the CRM posts to (signatures cover
    it); without one, the request's own Host header is used."""

    def __init__(
        self,
        loop: SyncLoop,
        endpoints: Mapping[str, Endpoint],
        metrics: Metrics,
        *,
        public_url: str | None = None,
        now: Callable[[], dt.datetime] | None = None,
        loop_alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.loop = loop
        self.endpoints = dict(endpoints)
        self.metrics = metrics
        self.public_url = public_url.rstrip("/") if public_url else None
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.loop_alive = loop_alive
        self._replays = _Replays()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method == "GET":
            return self._health(start_response)
        if path == "/metrics" and method == "GET":
            body, kind = self.metrics.render()
            return _answer(start_response, 200, body, kind)
        m = re.fullmatch(r"/webhooks/([A-Za-z0-9_-]+)", path)
        if m and method == "POST":
            status, reply = self._receive(m[1], environ)
            return _answer(start_response, status, json.dumps(reply).encode(), "application/json")
        return _answer(start_response, 404, b'{"error": "not found"}', "application/json")

    # -- /healthz ---------------------------------------------------------------------------

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        alive = self.loop_alive()
        pending = {n: self.loop.store.pending_events(n).count for n in self.loop.platforms}
        body = {"status": "ok" if alive else "sync loop stopped", "pending_events": pending}
        return _answer(start_response, 200 if alive else 503, json.dumps(body).encode(), "application/json")

    # -- /webhooks/<platform> ------------------------------------------------------------------

    def _receive(self, platform: str, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        endpoint = self.endpoints.get(platform)
        if endpoint is None:
            return 404, {"error": f"no webhook endpoint for {platform!r} here"}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return 413, {"error": "body too large or of unknown length"}
        body = environ["wsgi.input"].read(length) if length else b""
        request = WebhookRequest(
            method=environ.get("REQUEST_METHOD", "POST"),
            url=self._url(environ),
            headers=_headers(environ),
            body=body,
            received_at=self.now(),
        )
        # A CRM's own redelivery differs (HubSpot's attemptNumber); a replay does not.
        digest = hashlib.sha256(request.url.encode() + b"\n" + body).hexdigest()
        try:
            endpoint.receiver.verify(request, endpoint.secret, now=request.received_at)
            if self._replays.seen(digest, time.monotonic()):
                raise WebhookRefused("replayed", "this exact delivery was already accepted")
        except WebhookRefused as refused:
            self.metrics.refused(platform, refused.reason)
            peer = environ.get("REMOTE_ADDR", "?")
            log.warning("%s: refused a webhook delivery from %s: %s", platform, peer, refused)
            return 401, {"error": refused.reason}
        try:
            events = endpoint.receiver.parse(request)
        except ValueError as exc:
            self.metrics.refused(platform, "malformed")
            log.warning("%s: a signed webhook delivery was not readable: %s", platform, exc)
            return 400, {"error": str(exc)}
        return self._queue(endpoint, events, request.received_at, digest)

    def _queue(
        self, endpoint: Endpoint, events: Iterable[WebhookEvent], at: dt.datetime, digest: str
    ) -> tuple[int, dict[str, Any]]:
        platform = endpoint.platform
        wanted, echoes = [], 0
        ours = self._account(platform)
        for event in events:
            if event.property_name is not None and event.property_name.casefold() in endpoint.managed:
                echoes += 1  # segsync's own write coming back: nothing to sync
            elif ours is not None and event.account is not None and event.account != ours:
                echoes += 1  # an app installed in several accounts: another account's event
            else:
                wanted.append(event)
        try:
            new = self.loop.store.queue_events(platform, wanted, at) if wanted else 0
        except SegsyncError as err:
            # Not committed, so not acknowledged: the CRM delivers it again.
            log.warning("%s: could not queue webhook events: %s", platform, err)
            return 503, {"error": "state store busy; deliver again"}
        self._replays.add(digest, time.monotonic())
        self.metrics.received(platform, queued=new, duplicates=len(wanted) - new, ignored=echoes)
        if new:
            self.loop.wake(platform)
        return 200, {"queued": new, "duplicates": len(wanted) - new, "ignored": echoes}

    def _account(self, platform: str) -> str | None:
        """The CRM's id of the account the project last synced (None before its first sync)."""
        try:
            jobs = self.loop.store.recent_jobs(1, platform=platform)
        except SegsyncError:
            return None
        return jobs[0].account.partition(":")[2] if jobs else None

    def _url(self, environ: dict[str, Any]) -> str:
        base = self.public_url or f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        query = str(environ.get("QUERY_STRING", ""))
        # The path as sent (PATH_INFO is percent-decoded; the CRM signed what it sent).
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        path = str(raw).split("?", 1)[0] if raw else str(environ.get("PATH_INFO", ""))
        return base + path + (f"?{query}" if query else "")


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = str(environ["CONTENT_TYPE"])
    return out


def _answer(start_response: StartResponse, status: int, body: bytes, kind: str) -> Iterable[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Too Large"}
    reason = reasons.get(status, "Service Unavailable")
    start_response(f"{status} {reason}", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


def endpoints_for(project: Project, platforms: Sequence[str]) -> dict[str, Endpoint]:
    """Each platform's webhook endpoint; a platform whose plugin receives none, or whose
    secret is not in the environment, is a configuration error (nothing starts)."""
    from segsync.core.desired import desired_fields

    managed = frozenset(f.key.casefold() for f in desired_fields(project.config, project.packs))
    out: dict[str, Endpoint] = {}
    for name in platforms:
        cls = project.registry.platform(name)
        factory = getattr(cls, "webhook_receiver", None)
        if factory is None:
            raise ConfigError(f"{name}: the plugin receives no webhooks; use `segsync watch` for it")
        receiver: WebhookReceiver = factory()
        secret = project.env.get(receiver.secret_env, "")
        if not secret:
            raise ConfigError(
                f"{name}: set {receiver.secret_env} to the secret its webhooks are checked with "
                "(docs/operations.md: webhooks), or leave it out with -p"
            )
        out[name] = Endpoint(name, receiver, secret, managed)
    return out


class Service:
    """The receiver and the sync loop, started together, each in a thread of its own."""

    def __init__(
        self,
        project: Project,
        loop: SyncLoop,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 4,
        public_url: str | None = None,
        on_outcome: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        from waitress.server import create_server

        self.loop = loop
        self.endpoints = endpoints_for(project, loop.platforms)
        self.metrics = Metrics()

        def outcome(o: RunOutcome) -> None:
            self.metrics.synced(o)
            if on_outcome is not None:
                on_outcome(o)

        loop.on_outcome = outcome
        self.worker = threading.Thread(target=loop.run, name="segsync-sync-loop", daemon=True)
        self.app = WebhookApp(
            loop, self.endpoints, self.metrics, public_url=public_url, loop_alive=self.worker.is_alive
        )
        try:
            self.server = create_server(self.app, host=host, port=port, threads=threads, ident="segsync")
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port"
            ) from None
        self.url = f"http://{host}:{getattr(self.server, 'effective_port', port)}"
        self._http: threading.Thread | None = None

    def start(self) -> None:
        self.worker.start()
        self._http = threading.Thread(target=self.server.run, name="segsync-http", daemon=True)
        self._http.start()

    def shutdown(self) -> None:
        """Stop taking deliveries and stop the loop (a running sync stops at a checkpoint)."""
        self.loop.stop.set()
        self.loop.poke()
        self.server.close()

    def join(self, timeout: float | None = None) -> None:
        self.worker.join(timeout)
        if self._http is not None:
            self._http.join(timeout)


def run_server(
    project: Project,
    loop: SyncLoop,
    args: argparse.Namespace,
    *,
    on_outcome: Callable[[RunOutcome], None],
) -> int:
    """Serve until SIGTERM/SIGINT: waitress and the loop in threads, this one waiting for a stop."""
    service = Service(
        project,
        loop,
        host=args.host,
        port=args.port,
        threads=args.threads,
        public_url=args.public_url,
        on_outcome=on_outcome,
    )
    paths = ", ".join(f"/webhooks/{n}" for n in service.endpoints)
    timer = f"; and every {human_duration(loop.every)}" if loop.every else ""
    print(f"segsync serve: listening on {service.url}: {paths}, /healthz, /metrics{timer}", flush=True)
    service.start()
    # The handler only sets ``stop``: closing waitress's sockets inside a signal handler, under
    # its own select loop, breaks that loop; the main thread closes them once it wakes.
    with stop_on_signals(loop.stop, loop.poke):
        while not loop.stop.wait(0.5):
            if not service.worker.is_alive():
                raise RuntimeError("the sync loop died")
    service.shutdown()
    service.join()
    print("segsync serve: stopped", flush=True)
    return 0


__all__ = ["MAX_BODY", "REPLAY_WINDOW", "Endpoint", "Service", "WebhookApp", "endpoints_for", "run_server"]
