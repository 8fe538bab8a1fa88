"""A small loopback HTTP server that platform sandboxes build on.

It does the parts every CRM emulator needs the same way: routing, JSON bodies, a traffic log
in the JSON Lines format of ``shared/tools/spec_check.py`` (secret headers REDACTED), a fault
plan (429/5xx answers, hangs, dropped connections, writes whose response is lost) and rate
windows per bucket. The platform part supplies routes, auth, error bodies and rate headers.

Handlers run one at a time under a lock: CRM state changes are atomic per request, as they are
on the real service, and tests see no races of the emulator's own making.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from segsync.sync.runner import Clock, SystemClock

SECRET_HEADERS = frozenset({"authorization", "api-key", "cookie", "proxy-authorization"})

FaultKind = Literal["429", "500", "502", "503", "timeout", "drop", "lost_response"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "timeout", "drop", "lost_response")


def derived_account_id(secret: str, *, digits: int = 8, hexadecimal: bool = False) -> str:
    """An account id made from the credential, as real CRMs behave: two tokens, two accounts.

    A one-way hash, so the id (which segsync stores and prints) says nothing of the secret:
    ``digits`` decimal digits without a leading zero, or with ``hexadecimal`` that many
    lower-case hex digits (Brevo's organisation ids).
    """
    if hexadecimal:
        return hashlib.sha256(secret.encode()).hexdigest()[:digits]
    number = int.from_bytes(hashlib.sha256(secret.encode()).digest()[:8], "big")
    low = 10 ** (digits - 1)
    return str(low + number % (9 * low))


class FaultPlan(BaseModel):
    """Which calls a sandbox answers badly.

    ``rates`` gives a probability per fault kind for every call; ``script`` is a queue of
    kinds (or ``"ok"``) consumed one per matching call before ``rates`` apply, for exact
    tests. ``methods``/``path_pattern`` narrow which calls are eligible. ``lost_response``
    applies the request and then drops the connection; ``timeout`` holds the connection for
    ``hang_seconds`` and closes it without answering (nothing applied); ``drop`` closes at once.
    """

    model_config = ConfigDict(extra="forbid")

    rates: dict[FaultKind, float] = Field(default_factory=dict)
    script: list[FaultKind | Literal["ok"]] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    path_pattern: str | None = None
    seed: int = 0
    hang_seconds: float = 1.0
    retry_after: float | None = None

    @classmethod
    def parse_cli(cls, text: str) -> FaultPlan:
        """``"429=0.1,503=0.05,lost_response=0.02,seed=3"`` → FaultPlan."""
        rates: dict[str, float] = {}
        extra: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r}: expected KIND=RATE, e.g. 429=0.1")
            if key in FAULT_KINDS:
                rates[key] = float(value)
            elif key in ("seed",):
                extra[key] = int(value)
            elif key in ("hang_seconds", "retry_after"):
                extra[key] = float(value)
            else:
                raise ValueError(
                    f"fault {key!r}: expected one of {', '.join(FAULT_KINDS)}, seed, hang_seconds"
                )
        return cls.model_validate({"rates": rates, **extra})


class _FaultState:
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.script = deque(plan.script)
        self.rng = random.Random(plan.seed)
        self.pattern = re.compile(plan.path_pattern) if plan.path_pattern else None
        self.injected: dict[str, int] = {}

    def pick(self, method: str, path: str) -> str | None:
        if self.plan.methods and method not in self.plan.methods:
            return None
        if self.pattern and not self.pattern.search(path):
            return None
        kind: str | None = None
        if self.script:
            step = self.script.popleft()
            kind = None if step == "ok" else step
        else:
            roll = self.rng.random()
            acc = 0.0
            for k, rate in self.plan.rates.items():
                acc += rate
                if roll < acc:
                    kind = k
                    break
        if kind:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lname), None)

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, {"message": "request body is required"})
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpError(400, {"message": "request body is not valid JSON"}) from None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, bytes, or None for no body
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by handlers to answer with an error; the body is already the vendor's shape."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = Response(status, body, dict(headers or {}))


Handler = Callable[[Request, "re.Match[str]"], Response]


class RateWindows:
    """Sliding-window request counts per bucket, on the sandbox's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.windows: dict[str, list[tuple[int, float]]] = {}
        self.sent: dict[str, deque[float]] = {}

    def configure(self, bucket: str, windows: Iterable[tuple[int, float]]) -> None:
        self.windows[bucket] = list(windows)
        self.sent.setdefault(bucket, deque())

    def take(self, bucket: str) -> tuple[bool, int, int, float]:
        """Count one request: (allowed, limit, remaining, seconds until the tightest window frees)."""
        now = self.clock.now()
        windows = self.windows.get(bucket)
        if not windows:
            return True, 0, 0, 0.0
        sent = self.sent[bucket]
        longest = max(s for _, s in windows)
        while sent and now - sent[0] >= longest:
            sent.popleft()
        tightest: tuple[int, int, float] | None = None
        for limit, seconds in windows:
            recent = [t for t in sent if now - t < seconds]
            if len(recent) >= limit:
                reset = recent[len(recent) - limit] + seconds - now
                return False, limit, 0, max(reset, 0.001)
            remaining = limit - len(recent) - 1
            reset = (recent[0] + seconds - now) if recent else seconds
            if tightest is None or remaining / limit < tightest[1] / tightest[0]:
                tightest = (limit, remaining, reset)
        sent.append(now)
        assert tightest is not None
        return True, tightest[0], tightest[1], tightest[2]


class EmulatorServer:
    """Routes + faults + traffic log on a ThreadingHTTPServer bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.traffic_log = traffic_log
        self.clock: Clock = clock or SystemClock()
        self.rates = RateWindows(self.clock)
        self._faults = _FaultState(faults or FaultPlan())
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests_seen = 0

    # -- configuration --------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def set_faults(self, plan: FaultPlan) -> None:
        with self._lock:
            self._faults = _FaultState(plan)

    @property
    def faults_injected(self) -> dict[str, int]:
        return dict(self._faults.injected)

    @property
    def lock(self) -> threading.RLock:
        """Hold this to change emulator state from a test or the demo between requests."""
        return self._lock

    # -- hooks for the platform part -------------------------------------------------------

    def authenticate(self, req: Request) -> Response | None:
        """Return an error response when the request is not authorised."""
        return None

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def rate_limited(self, req: Request) -> Response | None:
        """Return a 429 when the request is over a rate window; may add headers via req."""
        return None

    def decorate(self, req: Request, resp: Response) -> None:
        """Add per-response headers (rate-limit counters) after a handler ran."""

    def fault_response(self, kind: str, req: Request) -> Response:
        status = int(kind)
        return Response(status, self.error_body(status, _FAULT_TEXT.get(status, "error")))

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class _H(_RequestHandler):
            emulator = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _H)
        self._httpd.daemon_threads = True
        # A short poll interval: stop() waits one interval for the loop to notice (tests stop many).
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.02), name="segsync-sandbox", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Foreground serving, for the ``segsync sandbox`` command."""
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[Response | None, str | None]:
        """(response, fault) — a None response means: drop the connection unanswered."""
        with self._lock:
            self.requests_seen += 1
            denied = self.authenticate(req)
            if denied is not None:
                return denied, None
            fault = self._faults.pick(req.method, req.path)
            if fault in ("429", "500", "502", "503"):
                resp = self.fault_response(fault, req)
                if fault == "429" and self._faults.plan.retry_after is not None:
                    resp.headers.setdefault("Retry-After", str(int(self._faults.plan.retry_after)))
                return resp, fault
            if fault in ("timeout", "drop"):
                return None, fault
            limited = self.rate_limited(req)
            if limited is not None:
                return limited, None
            resp = self._dispatch(req)
            self.decorate(req, resp)
            if fault == "lost_response":
                return None, fault
            return resp, None

    def _dispatch(self, req: Request) -> Response:
        allowed: list[str] = []
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if not m:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            try:
                return handler(req, m)
            except HttpError as err:
                return err.response
        if allowed:
            return Response(405, self.error_body(405, f"method {req.method} not allowed on {req.path}"))
        return Response(404, self.error_body(404, f"no such endpoint: {req.method} {req.path}"))

    def record(self, req: Request, resp: Response | None, raw_body: bytes) -> None:
        if self.traffic_log is None or resp is None:
            return
        entry = {
            "method": req.method,
            "path": req.path,
            "query": urllib.parse.urlencode([(k, v) for k, vs in req.query.items() for v in vs]),
            "request_headers": {
                k: ("REDACTED" if k.lower() in SECRET_HEADERS else v) for k, v in req.headers.items()
            },
            "request_body": req.body.decode("utf-8", "replace"),
            "status": resp.status,
            "response_headers": resp.headers,
            "response_body": raw_body.decode("utf-8", "replace"),
        }
        with self._log_lock, self.traffic_log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


_FAULT_TEXT = {
    429: "You have reached your rate limit.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class _RequestHandler(BaseHTTPRequestHandler):
    emulator: EmulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms each.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(self.path)
        # Queries decode as every real server does ('+' is a space); paths keep '+' literal,
        # which is how an e-mail sent unencoded in a path (Brevo's SDK does that) arrives.
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        req = Request(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            query=query,
            headers=dict(self.headers.items()),
            body=body,
        )
        req_raw_path = split.path
        resp, fault = self.emulator.handle(req)
        if resp is None:
            if fault == "timeout":
                time.sleep(self.emulator._faults.plan.hang_seconds)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if resp.body is None:
            raw = b""
        elif isinstance(resp.body, bytes):
            raw = resp.body
        else:
            raw = json.dumps(resp.body).encode()
            resp.headers.setdefault("Content-Type", "application/json;charset=utf-8")
        req.path = req_raw_path
        self.emulator.record(req, resp, raw)
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if raw and self.command != "HEAD":
            self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
