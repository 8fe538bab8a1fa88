"""Webhooks a sandbox sends, as its CRM does: from a background thread, batched, retried.

A sandbox with a webhook target queues an event for each change made through its API or its
facade; :class:`WebhookSender` posts them to the target in batches of up to ``batch`` events
(HubSpot: 100; Brevo: 1, or an array when batched), signing each request at send time with
the platform's ``sign`` (HubSpot's v3 signature, Brevo's bearer token). A delivery answered
other than 2xx, or not answered, is sent again after a short wait, up to ``attempts`` times,
as the CRMs retry; the counters say what happened, for tests.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

#: Signs one request: (method, url, body) -> headers to send with it.
Signer = Callable[[str, str, bytes], Mapping[str, str]]


class WebhookSender:
    def __init__(
        self,
        url: str,
        sign: Signer,
        *,
        batch: int = 100,
        as_array: bool = True,
        linger: float = 0.05,
        attempts: int = 5,
        retry_wait: float = 0.2,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.sign = sign
        self.batch = batch
        self.as_array = as_array
        self.linger = linger
        self.attempts = attempts
        self.retry_wait = retry_wait
        self.timeout = timeout
        self._queue: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        #: Requests answered 2xx, events in them, requests that failed every attempt, statuses seen.
        self.delivered = 0
        self.events_delivered = 0
        self.failed = 0
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def emit(self, event: dict[str, Any]) -> None:
        with self._cond:
            self._queue.append(event)
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event was delivered (or given up on); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                self._busy = True
            time.sleep(self.linger)  # let a burst gather into full batches, as the CRM does
            with self._cond:
                events, self._queue = self._queue[: self.batch], self._queue[self.batch :]
            try:
                self._deliver(events)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        for attempt in range(self.attempts):
            payload = [{**e, "attemptNumber": attempt} if "attemptNumber" in e else e for e in events]
            body = json.dumps(payload if self.as_array else payload[0]).encode()
            headers = {"Content-Type": "application/json", **self.sign("POST", self.url, body)}
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - loopback
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.statuses.append(status)
            if 200 <= status < 300:
                self.delivered += 1
                self.events_delivered += len(events)
                return
            time.sleep(self.retry_wait * (attempt + 1))
        self.failed += 1


__all__ = ["Signer", "WebhookSender"]
