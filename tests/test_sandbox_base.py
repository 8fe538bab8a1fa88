"""segsync.sandbox.SandboxBase: the facade both plugins' sandboxes share, on a toy platform."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from segsync.sandbox import (
    FaultPlan,
    Handler,
    RateTake,
    Request,
    Response,
    SandboxBase,
    SandboxServer,
    SeedData,
    SeedRules,
    derived_account_id,
)
from segsync.testing import FakeClock


class ToyServer(SandboxServer):
    """One endpoint, a key header, one rate bucket per path prefix."""

    sandbox: ToySandbox

    def endpoints(self) -> Iterable[tuple[str, str, Handler]]:
        return (
            ("GET", r"/api/things", self.things),
            ("GET", r"/api/slow/things", self.things),
        )

    def things(self, req: Request, m: re.Match[str]) -> Response:
        return Response(200, {"things": sorted(self.sandbox.things), "at": self.sandbox.now().isoformat()})

    def authenticate(self, req: Request) -> Response | None:
        if req.header("x-key") != self.sandbox.secret:
            return Response(401, {"error": "bad key"})
        return None

    def bucket_for(self, req: Request) -> str:
        return "slow" if req.path.startswith("/api/slow") else "fast"

    def rate_headers(self, takes: Mapping[str, RateTake]) -> dict[str, str]:
        (take,) = takes.values()
        return {"x-left": str(take.remaining), "x-reset": f"{take.reset:g}"}

    def too_many(self, req: Request, take: RateTake, takes: Mapping[str, RateTake]) -> Response:
        return Response(429, {"error": f"{take.bucket} is full"})


class ToySandbox(SandboxBase):
    platform: ClassVar[str] = "toy"
    seed_rules: ClassVar[SeedRules] = SeedRules("Toy")
    server_class = ToyServer
    base_path = "/api"

    def __init__(self, *, fast_per_second: int = 3, **kw: Any) -> None:
        self.things: set[str] = set()
        self.fast_per_second = fast_per_second
        super().__init__(**kw)

    @classmethod
    def account_id_problem(cls, account_id: str) -> str | None:
        return None if account_id.startswith("toy-") else "a toy account id starts with toy-"

    def rate_windows(self) -> Mapping[str, Sequence[tuple[int, float]]]:
        return {"fast": [(self.fast_per_second, 1.0)], "slow": [(1, 3600.0)]}

    def seed(self, data: SeedData) -> None:
        with self.server.lock:
            self.things.update(c.id for c in data.contacts)

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        return "p1"

    def add_contact(self, email: str | None, attributes: dict[str, Any] | None = None) -> str:
        with self.server.lock:
            self.things.add(email or "anonymous")
        return email or "anonymous"

    def delete_contact(self, contact_id: str) -> None:
        with self.server.lock:
            self.things.discard(contact_id)

    def delete_list(self, list_id: str) -> None:
        pass

    def snapshot(self) -> dict[str, object]:
        return {"fields": {}, "lists": {}, "field_defs": [], "list_names": []}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def toy(clock: FakeClock, tmp_path: Path) -> Iterator[ToySandbox]:
    sandbox = ToySandbox(secret="k-1", clock=clock, traffic_log=tmp_path / "traffic.jsonl")
    sandbox.start()
    yield sandbox
    sandbox.stop()


def get(sandbox: ToySandbox, path: str = "/things", key: str = "k-1") -> httpx.Response:
    return httpx.get(sandbox.base_url + path, headers={"x-key": key}, timeout=5)


def test_the_facade_starts_serves_and_stops(clock: FakeClock) -> None:
    sandbox = ToySandbox(secret="k-1", clock=clock)
    sandbox.start()
    url = sandbox.base_url
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", url)
        assert get(sandbox).json()["things"] == []
        assert get(sandbox, key="nope").status_code == 401
    finally:
        sandbox.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/things", timeout=1)


def test_the_account_id_is_derived_from_the_secret_or_given_and_checked() -> None:
    assert ToySandbox(secret="k-1").account_id == derived_account_id("k-1")
    assert ToySandbox(secret="k-1").account_id != ToySandbox(secret="k-2").account_id
    assert ToySandbox(secret="k-1", account_id="toy-7").account_id == "toy-7"
    with pytest.raises(ValueError, match="starts with toy-"):
        ToySandbox(secret="k-1", account_id="7")


def test_derived_ids_are_decimal_or_hex_and_say_nothing_of_the_secret() -> None:
    decimal = derived_account_id("secret-token")
    assert re.fullmatch(r"[1-9]\d{7}", decimal)
    assert re.fullmatch(r"[0-9a-f]{24}", derived_account_id("secret-token", digits=24, hexadecimal=True))
    assert "secret" not in decimal


def test_wall_time_follows_the_injected_clock(toy: ToySandbox, clock: FakeClock) -> None:
    before = toy.now()
    clock.sleep(3600)
    assert toy.now() - before == dt.timedelta(hours=1)
    assert dt.datetime.fromisoformat(get(toy).json()["at"]) - before >= dt.timedelta(hours=1)
    fixed = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    assert ToySandbox(secret="k", wall_clock=lambda: fixed).now() == fixed


def test_answers_carry_their_own_rate_headers_then_the_overrides(toy: ToySandbox) -> None:
    first, second = get(toy), get(toy)
    assert (first.headers["x-left"], second.headers["x-left"]) == ("2", "1")
    toy.header_overrides = {"x-left": "nan"}
    assert get(toy).headers["x-left"] == "nan"


def test_a_full_window_is_the_platforms_429_and_frees_on_the_clock(toy: ToySandbox, clock: FakeClock) -> None:
    assert [get(toy).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert get(toy).json() == {"error": "fast is full"}
    assert "x-left" not in get(toy).headers, "a 429 carries no stashed headers of an earlier answer"
    assert toy.rate_limited == 3
    assert toy.calls_by_bucket == {"fast": 6}
    clock.sleep(1.0)
    assert get(toy).status_code == 200
    assert get(toy, "/slow/things").status_code == 200
    assert get(toy, "/slow/things").json() == {"error": "slow is full"}


def test_retry_after_on_429_is_opt_in(toy: ToySandbox) -> None:
    for _ in range(3):
        get(toy)
    assert "Retry-After" not in get(toy).headers
    toy.retry_after_on_429 = True
    assert get(toy).headers["Retry-After"] == "1"


def test_rate_windows_can_change_while_running(toy: ToySandbox) -> None:
    toy.fast_per_second = 1
    toy.apply_rate_windows()
    assert [get(toy).status_code for _ in range(2)] == [200, 429]


def test_faults_and_the_traffic_log(toy: ToySandbox, tmp_path: Path) -> None:
    toy.set_faults(FaultPlan(script=["503"]))
    assert get(toy).status_code == 503
    assert toy.faults_injected == {"503": 1}
    toy.set_faults(None)
    assert get(toy).status_code == 200
    log = [json.loads(line) for line in (tmp_path / "traffic.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == [503, 200]
    assert all(e["path"] == "/api/things" for e in log)
    assert log[1]["response_headers"]["x-left"] == "2"


def test_seeding_and_actions_behind_segsyncs_back_hold_the_lock(toy: ToySandbox) -> None:
    from segsync.sandbox.seed import SeedContact

    contact = SeedContact(id="1", email="a@example.com", firstname="", lastname="", country="", city="",
                          age="", jobtitle="", company_size="", createdate="")  # fmt: skip
    toy.seed(SeedData([contact], []))
    assert get(toy).json()["things"] == ["1"]
    toy.delete_contact("1")
    assert get(toy).json()["things"] == []
