"""What every platform sandbox shares: the :class:`SandboxBase` facade and :class:`SandboxServer`.

A platform's sandbox subclasses both. The base owns what every emulator does the same way:

* the facade: ``start``/``stop``/``base_url``, the traffic log and the fault plan (handed to
  :class:`~segsync.sandbox.server.EmulatorServer`), counters tests assert on;
* time: the injected clock (rate windows, import steps) and the wall clock, which follows the
  injected clock so a test that waits an hour on a fake clock sees an hour pass in timestamps;
* the account id, derived from the secret as real CRMs do (two tokens, two accounts) unless
  given (``segsync sandbox --account-id``), and checked against the platform's id format;
* rate limiting: each request counts in the buckets ``bucket_for`` names; a full window is
  answered with the platform's 429, and the counters of a request that got through are stashed
  and added to its answer, with ``header_overrides`` (tests send malformed values) last.

The platform supplies its routes, its account state, ``bucket_for(request)``, its rate
headers and its 429, auth and error bodies::

    class AcmeServer(SandboxServer):
        def endpoints(self): ...                   # (method, path regex, handler)
        def bucket_for(self, req): ...             # "default"
        def rate_headers(self, takes): ...         # {"X-RateLimit-Remaining": ...}
        def too_many(self, req, take, takes): ...  # the 429 Response

    class AcmeSandbox(SandboxBase):
        platform = "acme"
        server_class = AcmeServer
        def rate_windows(self): return {"default": [(10, 1.0)]}
"""

from __future__ import annotations

import datetime as dt
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from segsync.sandbox.seed import SeedData, SeedRules
from segsync.sandbox.server import (
    EmulatorServer,
    FaultPlan,
    Handler,
    Request,
    Response,
    derived_account_id,
)
from segsync.sandbox.webhooks import Signer, WebhookSender
from segsync.sync.runner import Clock, SystemClock


@dataclass(frozen=True)
class RateTake:
    """One request counted in one bucket: whether it fit, the limit, what remains, when it frees.

    ``limit`` 0 means the bucket has no windows (unthrottled, no headers).
    """

    bucket: str
    allowed: bool
    limit: int
    remaining: int
    reset: float


class SandboxServer(EmulatorServer):
    """The emulator server of one sandbox: the shared rate flow and header stash.

    Subclasses add ``endpoints()``, ``authenticate``, ``error_body`` and ``fault_response``
    (see :class:`EmulatorServer`), and the rate hooks below.
    """

    def __init__(
        self,
        sandbox: SandboxBase,
        *,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(port=port, traffic_log=traffic_log, faults=faults, clock=clock)
        self.sandbox = sandbox
        self._stash: dict[str, str] = {}
        for method, pattern, handler in self.endpoints():
            self.route(method, pattern, handler)

    # -- what the platform supplies ---------------------------------------------------------

    def endpoints(self) -> Iterable[tuple[str, str, Handler]]:
        """(method, path regex, handler) of every endpoint, most specific first."""
        return ()

    def bucket_for(self, req: Request) -> str:
        """The rate bucket a request counts in."""
        return "default"

    def buckets_for(self, req: Request) -> Sequence[str]:
        """Every bucket a request counts in, in order (HubSpot: the 10-second, then the daily)."""
        return (self.bucket_for(req),)

    def rate_headers(self, takes: Mapping[str, RateTake]) -> dict[str, str]:
        """The rate-limit headers of an answer that got through, from its takes by bucket."""
        return {}

    def too_many(self, req: Request, take: RateTake, takes: Mapping[str, RateTake]) -> Response:
        """The 429 for a request over ``take``'s window; ``takes`` are the buckets before it."""
        return Response(429, self.error_body(429, "Too many requests"))

    # -- the shared flow ----------------------------------------------------------------------

    def rate_limited(self, req: Request) -> Response | None:
        sandbox = self.sandbox
        takes: dict[str, RateTake] = {}
        for bucket in self.buckets_for(req):
            sandbox.calls_by_bucket[bucket] = sandbox.calls_by_bucket.get(bucket, 0) + 1
            take = RateTake(bucket, *self.rates.take(bucket))
            if not take.allowed:
                sandbox.rate_limited += 1
                resp = self.too_many(req, take, takes)
                if sandbox.retry_after_on_429:
                    resp.headers["Retry-After"] = str(max(1, math.ceil(take.reset)))
                return resp
            takes[bucket] = take
        self._stash = self.rate_headers(takes)
        return None

    def decorate(self, req: Request, resp: Response) -> None:
        stash, self._stash = self._stash, {}
        resp.headers.update(stash)
        resp.headers.update(self.sandbox.header_overrides)


class SandboxBase(ABC):
    """The facade of one emulated account (a :class:`segsync.sandbox.Sandbox`).

    Subclasses set their own options and account state, then call ``super().__init__``, which
    builds ``server_class`` (its routes may read both) and configures ``rate_windows()``.
    """

    platform: ClassVar[str]
    seed_rules: ClassVar[SeedRules]
    server_class: ClassVar[type[SandboxServer]] = SandboxServer
    #: Where the API lives under the server root (Brevo's ``/v3``); part of ``base_url``.
    base_path: ClassVar[str] = ""
    #: The vendor's plans by name, as this sandbox's keywords (``segsync sandbox --plan``).
    plans: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        account_id: str | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if account_id is not None:
            problem = self.account_id_problem(account_id)
            if problem:
                raise ValueError(problem)
        #: The secret the sandbox accepts (token / API key).
        self.secret = secret
        #: The account's id: derived from the secret unless given (two secrets, two accounts).
        self.account_id = account_id or self.derive_account_id(secret)
        self.clock: Clock = clock or SystemClock()
        self._wall_origin = (dt.datetime.now(dt.UTC), self.clock.now())
        #: Wall time; by default it follows ``clock``, so simulated waits move timestamps too.
        self.wall_clock: Callable[[], dt.datetime] = wall_clock or self._clock_time
        #: Headers sent on every answer, replacing the sandbox's own (tests send malformed ones).
        self.header_overrides: dict[str, str] = {}
        #: Requests per rate bucket, and requests answered 429 for a full window.
        self.calls_by_bucket: dict[str, int] = {}
        self.rate_limited = 0
        #: Whether 429s for a full window carry Retry-After (no CRM documents one).
        self.retry_after_on_429 = False
        self.server: EmulatorServer = self.server_class(
            self, port=port, traffic_log=traffic_log, faults=faults, clock=self.clock
        )
        #: Where webhooks go, set by a platform that sends them (``webhook_url``), else None.
        self.webhooks: WebhookSender | None = None
        self.apply_rate_windows()

    # -- what the platform supplies ---------------------------------------------------------

    @classmethod
    def derive_account_id(cls, secret: str) -> str:
        return derived_account_id(secret)

    @classmethod
    def account_id_problem(cls, account_id: str) -> str | None:
        """Why the platform cannot hold this account id (``--account-id``), or None."""
        return None

    def rate_windows(self) -> Mapping[str, Sequence[tuple[int, float]]]:
        """Per bucket, (requests, seconds) windows the account allows."""
        return {}

    @abstractmethod
    def seed(self, data: SeedData) -> None: ...

    @abstractmethod
    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str: ...

    @abstractmethod
    def add_contact(self, email: str | None, attributes: dict[str, Any] | None = None) -> str:
        """A contact created in the account behind segsync's back; returns its id."""

    @abstractmethod
    def delete_contact(self, contact_id: str) -> None: ...

    @abstractmethod
    def delete_list(self, list_id: str) -> None: ...

    @abstractmethod
    def snapshot(self) -> dict[str, object]: ...

    # -- the facade ---------------------------------------------------------------------------

    def apply_rate_windows(self) -> None:
        """(Re)configure the server's windows from ``rate_windows()``, e.g. after a setting changed."""
        with self.server.lock:
            for bucket, windows in self.rate_windows().items():
                self.server.rates.configure(bucket, windows)

    def _clock_time(self) -> dt.datetime:
        start, origin = self._wall_origin
        return start + dt.timedelta(seconds=self.clock.now() - origin)

    def now(self) -> dt.datetime:
        """The account's wall time (UTC)."""
        return self.wall_clock()

    @property
    def base_url(self) -> str:
        """The value for ``[platforms.<name>] base_url`` that points the SDK here."""
        return self.server.base + self.base_path

    @property
    def faults_injected(self) -> dict[str, int]:
        return self.server.faults_injected

    def set_faults(self, plan: FaultPlan | None) -> None:
        self.server.set_faults(plan or FaultPlan())

    def start(self) -> None:
        self.server.start()

    def send_webhooks(self, url: str, sign: Signer, *, batch: int, as_array: bool = True) -> None:
        """Send this account's webhooks to ``url`` from now on (a subscription made or moved)."""
        if self.webhooks is not None:
            self.webhooks.close()
        self.webhooks = WebhookSender(url, sign, batch=batch, as_array=as_array)

    def stop(self) -> None:
        self.server.stop()
        if self.webhooks is not None:
            self.webhooks.flush(timeout=5.0)
            self.webhooks.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} account {self.account_id}>"


__all__ = ["RateTake", "SandboxBase", "SandboxServer"]
