"""Every exchange segsync has with Brevo conforms to Brevo's OpenAPI spec.

Self-contained, so it runs alone or in any order: the test makes its own traffic into a
fresh log, through brevo-python against sandboxes, then checks that log with
:func:`segsync.testing.spec.assert_traffic_conforms`. The traffic is the engine's clean
reference sync (the reliability harness's) plus scenes that drive every operation the plugin
uses and every answer it handles (deletions behind its back, a wrong key, a 429). Two more
checks keep the traffic honest: it covers every route and status in :data:`EXCHANGES`, and
every operation named in the plugin's source was made.

The spec copy (Feb 2025) documents 401 only globally (``info.description``), not per
operation, so 401 answers are checked for Brevo's error body and left out of the spec run;
everything else must conform, 0 exceptions.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import segsync_brevo
from segsync import (
    AuthError,
    Contact,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    ListSpec,
    PermanentError,
    Purchase,
)
from segsync.sandbox import FaultPlan, SeedData
from segsync.testing import FakeClock, SandboxWorld
from segsync.testing.reliability import ReliabilityHarness, standard_spec
from segsync.testing.spec import assert_traffic_conforms
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import connect, start_sandbox

SEGMENT = FieldSpec(
    key="segsync_rfm_segment",
    label="RFM segment",
    type="enumeration",
    options=(FieldOption(value="champions", label="Champions"), FieldOption(value="lost", label="Lost")),
)
SCORE = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
FIELDS = (SEGMENT, SCORE, FieldSpec(key="segsync_revenue", label="Revenue", type="number"))
CHAMPIONS = ListSpec(key="champions", name="segsync · Champions")

#: (method, route, status) of every exchange segsync has with Brevo.
EXCHANGES = {
    ("DELETE", "/v3/contacts/{id}", 204),
    ("GET", "/v3/account", 200),
    ("GET", "/v3/account", 401),
    ("GET", "/v3/contacts", 200),
    ("GET", "/v3/contacts/attributes", 200),
    ("GET", "/v3/contacts/attributes", 401),
    ("GET", "/v3/contacts/attributes", 429),
    ("GET", "/v3/contacts/folders", 200),
    ("GET", "/v3/contacts/folders/{id}/lists", 200),
    ("GET", "/v3/contacts/lists", 200),
    ("GET", "/v3/contacts/lists/{id}", 200),
    ("GET", "/v3/contacts/lists/{id}", 404),
    ("GET", "/v3/contacts/lists/{id}/contacts", 200),
    ("GET", "/v3/contacts/{email}", 200),
    ("GET", "/v3/contacts/{email}", 404),
    ("GET", "/v3/contacts/{id}", 200),
    ("GET", "/v3/contacts/{id}", 404),
    ("GET", "/v3/crm/attributes/deals", 200),
    ("GET", "/v3/crm/deals", 200),
    ("GET", "/v3/crm/pipeline/details/all", 200),
    ("GET", "/v3/orders", 200),
    ("GET", "/v3/processes/{id}", 200),
    ("POST", "/v3/contacts/attributes/category/{name}", 201),
    ("POST", "/v3/contacts/attributes/normal/{name}", 201),
    ("POST", "/v3/contacts/folders", 201),
    ("POST", "/v3/contacts/import", 202),
    ("POST", "/v3/contacts/lists", 201),
    ("POST", "/v3/contacts/lists/{id}/contacts/add", 201),
    ("POST", "/v3/contacts/lists/{id}/contacts/add", 404),
    ("POST", "/v3/contacts/lists/{id}/contacts/remove", 201),
    ("PUT", "/v3/contacts/attributes/category/{name}", 204),
    ("PUT", "/v3/contacts/{id}", 204),
    ("PUT", "/v3/contacts/{id}", 404),
}


def route(path: str) -> str:
    """A request path with its ids, names and emails replaced by placeholders."""
    path = re.sub(r"/contacts/[^/]*@[^/]*$", "/contacts/{email}", path)
    path = re.sub(r"/attributes/(category|normal)/[^/]+$", r"/attributes/\1/{name}", path)
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def source_operations() -> set[str]:
    """Operation names the plugin's code passes to its session (``call``, ``paged``)."""
    found: set[str] = set()
    package = Path(segsync_brevo.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("call", "paged")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


# -- scenes: each drives part of the plugin against a sandbox logging to the test's log ------


def pull(platform: BrevoPlatform, managed: tuple[FieldSpec, ...] = ()) -> list[Contact]:
    return [c for c in platform.iter_contacts(["email"], managed, {}) if isinstance(c, Contact)]


def a_short_sync(platform: BrevoPlatform, sandbox: BrevoSandbox) -> None:
    """One pass over every endpoint a small sync calls, and the deletions it meets."""
    platform.check()
    assert platform.account_id() == sandbox.account_id
    contacts = [c.id for c in pull(platform, FIELDS)]
    assert [p for p in platform.iter_purchases(None) if isinstance(p, Purchase)]
    assert all(v is None for v in platform.inspect_fields(FIELDS).values())
    platform.create_fields(FIELDS)
    grown = SEGMENT.model_copy(update={"options": (*SEGMENT.options, FieldOption(value="new", label="New"))})
    platform.update_field_options(grown)
    lst = platform.find_list(CHAMPIONS.name) or platform.create_list(CHAMPIONS, dynamic=False)
    assert platform.get_list(lst.id) is not None
    assert platform.get_lists([lst.id]) == {lst.id: platform.get_list(lst.id)}
    assert set(platform.add_members(lst.id, contacts[:3]).ok) == set(contacts[:3])
    platform.remove_members(lst.id, contacts[:1])
    assert set(platform.list_members(lst.id)) == set(contacts[1:3])
    written = platform.write_fields([ContactUpdate(contact_id=contacts[0], values={SCORE.key: "545"})])
    assert written.ok == (contacts[0],)
    platform.write_fields([ContactUpdate(contact_id=contacts[0], values={SCORE.key: None})])  # read back
    gone = platform.write_fields([ContactUpdate(contact_id="999999", values={SCORE.key: "1"})])
    assert gone.failed, "a PUT to a contact that does not exist is a 404"
    sandbox.delete_contact(contacts[3])
    assert platform.add_members(lst.id, [contacts[3]]).failed, "refused, then looked up: 404"
    sandbox.delete_list(lst.id)
    assert platform.get_list(lst.id) is None
    assert platform.get_lists([lst.id]) == {lst.id: None}
    with pytest.raises(PermanentError):
        platform.add_members(lst.id, contacts[4:5])


def imports(sandbox: BrevoSandbox, clock: FakeClock) -> None:
    """An import followed to completion and verified; the contact it made for a deleted one goes."""
    platform = connect(sandbox, clock, put_max=0)
    contacts = [c for c in pull(platform) if c.email][5:10]
    platform.create_fields([SCORE])
    victim = contacts[2]
    sandbox.delete_contact(victim.id)
    result = platform.write_fields(
        [ContactUpdate(contact_id=c.id, email=c.email, values={SCORE.key: "1"}) for c in contacts]
    )
    assert [f.record_id for f in result.failed] == [victim.id]
    # addresses unknown to this job (the engine passes none from its contact cache): more than
    # lookups by id 20 at a time would cost, so one listing of every contact finds them
    rest = [c for c in pull(connect(sandbox, clock)) if c.email][:45]
    fresh = connect(sandbox, clock, put_max=0)
    result = fresh.write_fields([ContactUpdate(contact_id=c.id, values={SCORE.key: "2"}) for c in rest])
    assert len(result.ok) == len(rest)
    ops = fresh.runner.stats.per_operation
    # the count, one page of every contact (not 3 lookups by id), one read-back of the import
    assert (ops["contacts.count"], ops["contacts.list"]) == (1, 2)


def orders(sandbox: BrevoSandbox, clock: FakeClock, data: SeedData) -> None:
    """Orders mode: buyers by id, or by an email with a '+' (percent-encoded), or unknown."""
    plus = next(c for c in data.contacts if "+" in c.email)
    sandbox.add_order(plus.email, Decimal("19.90"))
    sandbox.add_order("nobody+else@example.com", Decimal("5.00"))
    platform = connect(sandbox, clock, purchases="orders", currency="USD")
    platform.check()
    assert plus.id in {p.contact_id for p in platform.iter_purchases(None) if isinstance(p, Purchase)}


def refusals(sandbox: BrevoSandbox, clock: FakeClock) -> None:
    """A wrong key, and a 429 whose reset header says how long to wait."""
    wrong = connect(sandbox, clock, key="xkeysib-wrong-0000")
    with pytest.raises(AuthError):
        wrong.account_id()
    with pytest.raises(AuthError):
        wrong.check()
    sandbox.server.set_faults(FaultPlan(script=["429"], path_pattern=r"^/v3/contacts/attributes$"))
    platform = connect(sandbox, clock)
    platform.check()
    assert platform.runner.stats.rate_limited == 1


def engine_sync(traffic_log: Path, workdir: Path) -> None:
    """The engine's own call patterns: the reliability harness's clean sync and idle re-sync."""
    settings = {"timeout": 5.0, "put_max": 20}
    world = lambda: SandboxWorld(BrevoPlatform, settings=settings, traffic_log=traffic_log)  # noqa: E731
    reference = ReliabilityHarness(world, standard_spec(), workdir=workdir).reference()
    assert reference.results[0].report.status == "succeeded"


@pytest.fixture
def logged(clock: FakeClock, seed_data: SeedData, traffic_log: Path) -> Iterator[Callable[[], BrevoSandbox]]:
    """Fresh sandboxes seeded alike, all logging to the test's traffic log; stopped after it."""
    started: list[BrevoSandbox] = []

    def make() -> BrevoSandbox:
        started.append(start_sandbox(clock, seed_data, traffic_log))
        return started[-1]

    yield make
    for sandbox in started:
        sandbox.stop()


def test_segsyncs_traffic_conforms(
    traffic_log: Path,
    tmp_path: Path,
    clock: FakeClock,
    seed_data: SeedData,
    logged: Callable[[], BrevoSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[BrevoPlatform] = []
    create = BrevoPlatform.create

    def keep(*args: Any, **kw: Any) -> BrevoPlatform:
        made.append(create(*args, **kw))
        return made[-1]

    monkeypatch.setattr(BrevoPlatform, "create", keep)  # to see which operations were called
    sandbox = logged()
    a_short_sync(connect(sandbox, clock), sandbox)
    imports(logged(), clock)
    orders(logged(), clock, seed_data)
    refusals(logged(), clock)
    engine_sync(traffic_log, tmp_path)
    monkeypatch.undo()

    exchanges = [json.loads(line) for line in traffic_log.read_text(encoding="utf-8").splitlines()]
    seen = {(e["method"], route(e["path"]), e["status"]) for e in exchanges}
    assert not EXCHANGES - seen, f"the conformance traffic no longer makes {sorted(EXCHANGES - seen)}"
    assert any(re.fullmatch(r"/v3/contacts/[^/]*%2B[^/]*@[^/]+", e["path"]) for e in exchanges)
    made_ops = {op for p in made for op in p.runner.stats.per_operation}
    assert not source_operations() - made_ops, f"never called: {sorted(source_operations() - made_ops)}"
    for e in exchanges:
        assert e["request_headers"].get("api-key") in ("REDACTED", None), "a secret reached the log"
    for e in exchanges:
        if e["status"] == 401:
            assert json.loads(e["response_body"]) == {"code": "unauthorized", "message": "Key not found"}
    checked = tmp_path / "checked.jsonl"
    checked.write_text(
        "".join(json.dumps(e) + "\n" for e in exchanges if e["status"] != 401), encoding="utf-8"
    )
    assert_traffic_conforms("brevo", checked)


def test_the_source_scan_finds_the_plugins_operations() -> None:
    ops = source_operations()
    assert {"contacts.list", "contacts.import", "processes.get", "lists.add", "lists.remove"} <= ops
    assert {"account.get", "orders.list", "deals.list", "attributes.update"} <= ops
