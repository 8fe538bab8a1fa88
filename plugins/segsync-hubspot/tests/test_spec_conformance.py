"""Every exchange segsync has with HubSpot conforms to HubSpot's official OpenAPI specs.

Self-contained, so it runs alone or in any order: the test makes its own traffic into a
fresh log, through the real SDK against sandboxes, then checks that log with
:func:`segsync.testing.spec.assert_traffic_conforms`. The traffic is the engine's clean
reference sync (the reliability harness's) plus scenes that drive every operation the plugin
uses and every answer it handles: 207s, 400/401/403/404/409, 429s and 5xx faults. Two more
checks keep the traffic honest: it covers every route and status in :data:`EXCHANGES`, and
every operation named in the plugin's source was made. spec-check runs unchanged on success
exchanges and with a JSON reader for HubSpot's ``*/*`` error bodies on error answers (see
:mod:`segsync.testing.spec`).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import segsync_hubspot
from segsync import (
    AuthError,
    Contact,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    ListSpec,
    PermanentError,
    PermissionDenied,
    Purchase,
    PurchaseRetracted,
)
from segsync.sandbox import FaultPlan, SeedData
from segsync.testing import SandboxWorld
from segsync.testing.reliability import ReliabilityHarness, standard_spec
from segsync.testing.spec import assert_traffic_conforms
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

from .conftest import contact, deal

SEGMENT = FieldSpec(
    key="segsync_rfm_segment",
    label="RFM segment",
    type="enumeration",
    options=(FieldOption(value="champions", label="Champions"), FieldOption(value="lost", label="Lost")),
)
FIELDS = (
    SEGMENT,
    FieldSpec(key="segsync_revenue", label="Revenue", type="number"),
    FieldSpec(key="segsync_last_purchase", label="Last purchase", type="date"),
)
CHAMPIONS = ListSpec(key="champions", name="segsync · Champions")
LOST = ListSpec(key="lost", name="segsync · Lost", filter_field=SEGMENT.key, filter_value="lost")

#: (method, route, status) of every exchange segsync has with HubSpot.
EXCHANGES = {
    ("GET", "/account-info/v3/details", 200),
    ("GET", "/account-info/v3/details", 401),
    ("GET", "/crm/v3/lists/", 200),
    ("GET", "/crm/v3/lists/object-type-id/0-1/name/{name}", 200),
    ("GET", "/crm/v3/lists/object-type-id/0-1/name/{name}", 404),
    ("GET", "/crm/v3/lists/object-type-id/0-1/name/{name}", 429),
    ("GET", "/crm/v3/lists/object-type-id/0-1/name/{name}", 503),
    ("GET", "/crm/v3/lists/{id}", 200),
    ("GET", "/crm/v3/lists/{id}", 404),
    ("GET", "/crm/v3/lists/{id}/memberships", 200),
    ("GET", "/crm/v3/objects/contacts", 200),
    ("GET", "/crm/v3/objects/contacts", 401),
    ("GET", "/crm/v3/objects/deals", 200),
    ("GET", "/crm/v3/pipelines/deals", 200),
    ("GET", "/crm/v3/properties/contacts", 200),
    ("GET", "/crm/v3/properties/contacts/groups", 200),
    ("GET", "/crm/v3/properties/contacts/groups", 403),
    ("PATCH", "/crm/v3/properties/contacts/{name}", 200),
    ("POST", "/crm/v3/lists/", 200),
    ("POST", "/crm/v3/lists/", 400),
    ("POST", "/crm/v3/objects/deals/search", 200),
    ("POST", "/crm/v3/objects/contacts/search", 200),
    ("POST", "/crm/v3/objects/contacts/batch/update", 200),
    ("POST", "/crm/v3/objects/contacts/batch/update", 207),
    ("POST", "/crm/v3/objects/contacts/batch/update", 400),
    ("POST", "/crm/v3/objects/contacts/batch/update", 403),
    ("POST", "/crm/v3/objects/contacts/batch/update", 429),
    ("POST", "/crm/v3/objects/contacts/batch/update", 500),
    ("POST", "/crm/v3/objects/contacts/batch/update", 502),
    ("POST", "/crm/v3/objects/contacts/batch/update", 503),
    ("POST", "/crm/v3/properties/contacts/batch/create", 201),
    ("POST", "/crm/v3/properties/contacts/batch/create", 207),
    ("POST", "/crm/v3/properties/contacts/batch/create", 403),
    ("POST", "/crm/v3/properties/contacts/groups", 201),
    ("POST", "/crm/v3/properties/contacts/groups", 409),
    ("POST", "/crm/v4/associations/deals/contacts/batch/read", 200),
    ("POST", "/crm/v4/associations/deals/contacts/batch/read", 207),
    ("PUT", "/crm/v3/lists/{id}/memberships/add-and-remove", 200),
    ("PUT", "/crm/v3/lists/{id}/memberships/add-and-remove", 400),
    ("PUT", "/crm/v3/lists/{id}/memberships/add-and-remove", 403),
    ("PUT", "/crm/v3/lists/{id}/memberships/add-and-remove", 404),
}

MakeSandbox = Callable[..., HubSpotSandbox]
MakePlatform = Callable[..., HubSpotPlatform]


def route(path: str) -> str:
    """A request path with its ids and names replaced by placeholders."""
    path = re.sub(r"/name/[^/]+$", "/name/{name}", path)
    path = re.sub(r"/properties/contacts/(?!groups$|batch/)[^/]+$", "/properties/contacts/{name}", path)
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def source_operations() -> set[str]:
    """Operation names the plugin's code passes to its client (``call``, ``get_json``, probes)."""
    found: set[str] = set()
    package = Path(segsync_hubspot.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("call", "get_json") and node.args:
                arg: ast.expr | None = node.args[0]
            elif isinstance(func, ast.Name) and func.id == "Probe" and len(node.args) > 1:
                arg = node.args[1]
            else:
                continue
            branches = [arg]
            while any(isinstance(b, ast.IfExp) for b in branches):  # a choice of names, nested
                branches = [
                    x for b in branches for x in ([b.body, b.orelse] if isinstance(b, ast.IfExp) else [b])
                ]
            found |= {b.value for b in branches if isinstance(b, ast.Constant) and isinstance(b.value, str)}
    return found


# -- scenes: each drives part of the plugin against a sandbox logging to the test's log ------


def a_short_sync(platform: HubSpotPlatform) -> None:
    """One pass over every endpoint the plugin calls."""
    platform.check()
    assert platform.account_id() == platform.account_id()
    contacts = [c.id for c in platform.iter_contacts(["firstname"], FIELDS, {}) if isinstance(c, Contact)]
    purchases = [p for p in platform.iter_purchases(None) if isinstance(p, Purchase)]
    assert contacts
    assert purchases
    missing = {k for k, v in platform.inspect_fields(FIELDS).items() if v is None}
    platform.create_fields([f for f in FIELDS if f.key in missing])
    platform.create_fields(FIELDS)  # all exist: a 207 whose errors say so
    platform.update_field_options(
        SEGMENT.model_copy(update={"options": (*SEGMENT.options, FieldOption(value="new", label="New"))})
    )
    manual = platform.find_list(CHAMPIONS.name) or platform.create_list(CHAMPIONS, dynamic=False)
    assert platform.create_list(CHAMPIONS, dynamic=False) == manual, "a 400 duplicate name, then found"
    dynamic = platform.create_list(LOST, dynamic=True)
    with pytest.raises(PermanentError):
        platform.add_members(dynamic.id, contacts[:1])  # DYNAMIC lists take no membership changes
    platform.write_fields(
        [
            ContactUpdate(
                contact_id=contacts[0], values={SEGMENT.key: "lost", FIELDS[2].key: dt.date(2025, 1, 2)}
            ),
            ContactUpdate(contact_id="424242", values={FIELDS[1].key: 1}),
        ]
    )
    platform.add_members(manual.id, contacts[:3])
    platform.remove_members(manual.id, contacts[:1])
    platform.change_members(manual.id, contacts[:1], contacts[1:2])  # both in one call
    platform.change_members(manual.id, contacts[1:2], contacts[:1])
    assert list(platform.list_members(manual.id)) == contacts[1:3]
    assert platform.get_list(manual.id) is not None
    assert platform.get_lists([manual.id, dynamic.id]) == {
        manual.id: platform.get_list(manual.id),
        dynamic.id: platform.get_list(dynamic.id),
    }


def deals_all_with_contacts(make_sandbox: MakeSandbox, make_platform: MakePlatform) -> None:
    """Every won deal has a contact: the association read answers 200 (with none, 207)."""
    data = SeedData([contact("11"), contact("12")], [deal("901", "11"), deal("902", "12")])
    platform = make_platform(make_sandbox(data), home_currency="USD")
    assert {p.contact_id for p in platform.iter_purchases(None) if isinstance(p, Purchase)} == {"11", "12"}


def refusals(make_sandbox: MakeSandbox, make_platform: MakePlatform, data: SeedData) -> None:
    """The answers HubSpot refuses with: a wrong token, missing scopes, vanished lists, bad values."""
    sb = make_sandbox(data)
    wrong = make_platform(sb, token="pat-na1-not-the-token")
    with pytest.raises(AuthError):
        wrong.account_id()
    with pytest.raises(AuthError):
        list(wrong.iter_contacts([], [], {}))
    scoped = make_sandbox(
        data, scopes={"crm.objects.contacts.read", "crm.objects.deals.read", "crm.lists.read"}
    )
    with pytest.raises(PermissionDenied):
        make_platform(scoped).check()
    platform = make_platform(sb, home_currency="USD")
    gone = platform.create_list(ListSpec(key="gone", name="segsync · Gone"), dynamic=False)
    sb.delete_list(gone.id)
    assert platform.get_list(gone.id) is None
    assert platform.get_lists([gone.id]) == {gone.id: None}
    strict = make_sandbox(data, whole_batch_validation=True)
    checked = make_platform(strict)
    checked.create_fields([SEGMENT])
    ids = [c.id for c in data.contacts[:2]]
    result = checked.write_fields(
        [ContactUpdate(contact_id=ids[0], values={SEGMENT.key: "lost"})]
        + [ContactUpdate(contact_id=ids[1], values={SEGMENT.key: "not-an-option"})]
    )
    assert [f.record_id for f in result.failed] == [ids[1]], "a whole batch refused (400), then split"


def faults(make_sandbox: MakeSandbox, make_platform: MakePlatform, data: SeedData) -> None:
    """429s of a full window and of a fault, 5xx bodies, and a create whose answer was lost (409)."""
    sb = make_sandbox(data, rate_limit=2)
    platform = make_platform(sb, timeout=0.2)
    with sb.server.lock:  # another app of the same portal spends the window
        sb.server.rates.take("ten_secondly")
        sb.server.rates.take("ten_secondly")
    assert platform.find_list("segsync · nothing") is None
    sb.set_rate_limit(190)
    sb.server.set_faults(FaultPlan(script=["503"], path_pattern="/name/"))
    assert platform.find_list("segsync · nothing") is None
    sb.server.set_faults(FaultPlan(script=["lost_response"], methods=["POST"], path_pattern="/groups$"))
    platform.create_fields([SEGMENT])
    ids = [c.id for c in data.contacts[:2]]
    for kind in ("429", "500", "502", "503"):
        sb.server.set_faults(FaultPlan(script=[kind], methods=["POST"], path_pattern="/batch/update$"))
        result = platform.write_fields(
            [ContactUpdate(contact_id=i, values={SEGMENT.key: "lost"}) for i in ids]
        )
        assert result.ok == tuple(ids)
    assert platform.runner.stats.retries >= 6


def incremental_pull(make_sandbox: MakeSandbox, make_platform: MakePlatform, data: SeedData) -> None:
    """A full pull, then the changes since: a new deal, a lost one, a deleted one."""
    sandbox = make_sandbox(data)
    platform = make_platform(sandbox)
    first = [r for r in platform.iter_purchases(None) if isinstance(r, Purchase)]
    cursor = max(p.modified_at for p in first if p.modified_at)
    sandbox.clock.advance(60)
    sandbox.add_purchase("107", Decimal("42.00"), dt.datetime(2026, 1, 10, tzinfo=dt.UTC))
    sandbox.set_deal_stage("5001", "closedlost")
    sandbox.archive_deal("5002")
    changes = list(platform.iter_purchases(cursor + dt.timedelta(seconds=1)))
    assert {r.id for r in changes if isinstance(r, PurchaseRetracted)} == {"5001", "5002"}
    list(platform.iter_contacts([], FIELDS, {}))
    since = platform.contacts_newest
    assert since is not None
    sandbox.clock.advance(60)
    new = sandbox.add_contact("new@example.com")
    sandbox.delete_contact("101")
    sandbox.set_contact_property("102", "firstname", "Renamed")
    later = since + dt.timedelta(seconds=30)
    created = list(platform.iter_changed_contacts(later, [], FIELDS, {}, reread=False))
    assert [c.id for c in created] == [new, "101"]
    modified = list(platform.iter_changed_contacts(later, ["firstname"], FIELDS, {}, reread=True))
    assert [c.id for c in modified] == ["102", new, "101"]


def engine_sync(traffic_log: Path, workdir: Path) -> None:
    """The engine's own call patterns: the reliability harness's clean sync and idle re-sync."""
    world = lambda: SandboxWorld(HubSpotPlatform, settings={"timeout": 0.5}, traffic_log=traffic_log)  # noqa: E731
    reference = ReliabilityHarness(world, standard_spec(), workdir=workdir).reference()
    assert reference.results[0].report.status == "succeeded"


@pytest.fixture
def platforms(make_platform: MakePlatform) -> tuple[MakePlatform, list[HubSpotPlatform]]:
    """``make_platform``, keeping every platform made, to see which operations they called."""
    made: list[HubSpotPlatform] = []

    def make(*args: Any, **kw: Any) -> HubSpotPlatform:
        made.append(make_platform(*args, **kw))
        return made[-1]

    return make, made


@pytest.mark.spec_conformance
def test_segsyncs_traffic_conforms(
    traffic_log: Path,
    tmp_path: Path,
    make_sandbox: MakeSandbox,
    platforms: tuple[MakePlatform, list[HubSpotPlatform]],
    demo_data: SeedData,
    small_data: SeedData,
) -> None:
    make_platform, made = platforms
    a_short_sync(make_platform(make_sandbox(demo_data), home_currency="USD"))
    deals_all_with_contacts(make_sandbox, make_platform)
    refusals(make_sandbox, make_platform, small_data)
    faults(make_sandbox, make_platform, small_data)
    incremental_pull(make_sandbox, make_platform, small_data)
    engine_sync(traffic_log, tmp_path)

    exchanges = [json.loads(line) for line in traffic_log.read_text(encoding="utf-8").splitlines()]
    seen = {(e["method"], route(e["path"]), e["status"]) for e in exchanges}
    assert not EXCHANGES - seen, f"the conformance traffic no longer makes {sorted(EXCHANGES - seen)}"
    made_ops = {op for p in made for op in p.runner.stats.per_operation}
    assert not source_operations() - made_ops, f"never called: {sorted(source_operations() - made_ops)}"
    for e in exchanges:
        assert e["request_headers"].get("Authorization") in ("REDACTED", None), "a secret reached the log"
    assert_traffic_conforms("hubspot", traffic_log)


def test_the_source_scan_finds_the_plugins_operations() -> None:
    ops = source_operations()
    assert {"contacts.list", "deals.list", "associations.read", "lists.add", "lists.remove"} <= ops
    assert {"account.details", "check.lists.write", "contacts.write"} <= ops


def _exchange(status: int, body: object, path: str = "/crm/v3/objects/contacts") -> str:
    return json.dumps(
        {
            "method": "GET",
            "path": path,
            "query": "limit=1",
            "request_headers": {"Authorization": "REDACTED"},
            "request_body": "",
            "status": status,
            "response_headers": {"Content-Type": "application/json;charset=utf-8"},
            "response_body": json.dumps(body),
        }
    )


GOOD_PAGE: dict[str, list[dict[str, object]]] = {
    "results": [
        {
            "id": "1",
            "properties": {"email": "a@example.com"},
            "createdAt": "2024-01-01T00:00:00.000Z",
            "updatedAt": "2024-01-01T00:00:00.000Z",
            "archived": False,
        }
    ]
}
GOOD_ERROR = {
    "status": "error",
    "message": "x",
    "correlationId": "aa0b6e4c-0d3a-4d5e-9a4b-2f6f0c4d1e11",
    "category": "X",
}


@pytest.mark.parametrize(
    "bad",
    [
        _exchange(200, {"results": [{**GOOD_PAGE["results"][0], "properties": {"email": None}}]}),
        _exchange(404, {"message": "an error without category and correlationId"}, "/crm/v3/lists/1"),
    ],
)
def test_the_conformance_check_can_fail(tmp_path: Path, bad: str) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(
        "\n".join([_exchange(200, GOOD_PAGE), _exchange(404, GOOD_ERROR, "/crm/v3/lists/1"), bad]) + "\n"
    )
    with pytest.raises(AssertionError, match="non-conforming"):
        assert_traffic_conforms("hubspot", log)


def test_the_conformance_check_passes_good_traffic(tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(_exchange(200, GOOD_PAGE) + "\n" + _exchange(404, GOOD_ERROR, "/crm/v3/lists/1") + "\n")
    assert_traffic_conforms("hubspot", log)
