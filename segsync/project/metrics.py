"""Prometheus metrics of ``segsync serve`` (``GET /metrics``), one registry per server.

* ``segsync_webhook_events_total{platform,outcome}``: events received: ``queued`` (new),
  ``duplicate`` (a redelivery), ``ignored`` (segsync's own write coming back);
* ``segsync_webhook_refused_total{platform,reason}``: deliveries refused (bad signature,
  stale, replayed, unsigned, malformed...);
* ``segsync_syncs_total{platform,status}``: syncs run: succeeded, paused, failed, locked, stopped;
* ``segsync_sync_seconds{platform}``: how long each sync took;
* ``segsync_event_lag_seconds{platform}``: from an event (as the CRM stamped it) to the end of
  the sync that wrote its effects;
* ``segsync_rate_limit_waits_total{platform}``: calls the CRM answered 429, and
  ``segsync_rate_limit_pause_seconds_total{platform}``: time syncs spent paused for a budget;
* ``segsync_contacts_written_total{platform}`` and ``segsync_api_calls_total{platform}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from segsync.project.loop import RunOutcome

_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, float("inf"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "segsync_webhook_events", "Webhook events received", ["platform", "outcome"], registry=r
        )
        self.refusals = Counter(
            "segsync_webhook_refused", "Webhook deliveries refused", ["platform", "reason"], registry=r
        )
        self.syncs = Counter("segsync_syncs", "Syncs run", ["platform", "status"], registry=r)
        self.sync_seconds = Histogram("segsync_sync_seconds", "Sync duration", ["platform"], registry=r)
        self.lag = Histogram(
            "segsync_event_lag_seconds",
            "From a CRM event to the end of the sync that wrote its effects",
            ["platform"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.rate_waits = Counter(
            "segsync_rate_limit_waits", "Calls the CRM answered 429", ["platform"], registry=r
        )
        self.pause_seconds = Counter(
            "segsync_rate_limit_pause_seconds",
            "Seconds of syncs paused for a rate budget",
            ["platform"],
            registry=r,
        )
        self.written = Counter("segsync_contacts_written", "Contacts written", ["platform"], registry=r)
        self.calls = Counter("segsync_api_calls", "CRM API calls made by syncs", ["platform"], registry=r)

    def received(self, platform: str, *, queued: int, duplicates: int, ignored: int) -> None:
        for outcome, n in (("queued", queued), ("duplicate", duplicates), ("ignored", ignored)):
            if n:
                self.events.labels(platform, outcome).inc(n)

    def refused(self, platform: str, reason: str) -> None:
        self.refusals.labels(platform, reason).inc()

    def synced(self, outcome: RunOutcome) -> None:
        p = outcome.platform
        self.syncs.labels(p, outcome.status).inc()
        self.sync_seconds.labels(p).observe(outcome.seconds)
        for lag in outcome.lags:
            self.lag.labels(p).observe(lag)
        if outcome.status == "paused" and outcome.wait:
            self.pause_seconds.labels(p).inc(outcome.wait)
        if outcome.report is not None:
            self.rate_waits.labels(p).inc(outcome.report.rate_limited)
            self.written.labels(p).inc(outcome.report.contacts_written)
            self.calls.labels(p).inc(outcome.report.calls)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["Metrics"]
