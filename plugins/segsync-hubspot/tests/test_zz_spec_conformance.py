"""Every exchange of this session's sandbox tests conforms to HubSpot's official OpenAPI specs.

conftest.py moves the ``spec_conformance`` test to the end of the run, after every test that
appends to the session traffic log; it also drives a short sync itself, so it checks every
endpoint the plugin uses even when run alone.

Success exchanges go through ``shared/tools/spec-check`` unchanged. Error answers (status >=
400) need one allowance: HubSpot's specs declare them ``*/*`` (``components/responses/Error``),
and the openapi-core behind spec-check hands ``*/*`` bodies to the schema as raw bytes, so every
error body "does not conform" whatever it holds. They go through the same checker with a JSON
reader registered for ``*/*`` (HubSpot sends errors as JSON), so their bodies are still held to
the spec's ``Error`` schema.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from segsync import Contact, ContactUpdate, FieldOption, FieldSpec, ListSpec, Purchase
from segsync.sandbox import SeedData
from segsync.testing.spec import run_spec_check, shared_dir
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

_JSON_ERRORS = """
import functools, json, sys
import openapi_core
sys.path.insert(0, sys.argv[1])
openapi_core.Config = functools.partial(
    openapi_core.Config, extra_media_type_deserializers={"*/*": lambda value, **_: json.loads(value)}
)
import spec_check
sys.exit(spec_check.main(["validate", "--platform", "hubspot", "--max-errors", "1000", sys.argv[2]]))
"""


def _spec_check_python() -> Path:
    """The private interpreter ``shared/tools/spec-check`` builds (same default location)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("SPEC_CHECK_VENV") or cache / "segsync-spec-check") / "bin" / "python"


def check_hubspot_traffic(log: Path) -> None:
    """Fail unless every exchange in ``log`` conforms (error bodies read as JSON, see above)."""
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared (vendor OpenAPI specs and spec-check) is not beside this checkout; CI has it")
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    if not lines:
        pytest.fail(f"no traffic was recorded in {log}")
    successes = log.with_name(log.stem + ".success.jsonl")
    errors = log.with_name(log.stem + ".errors.jsonl")
    successes.write_text("".join(f"{x}\n" for x in lines if json.loads(x)["status"] < 400), encoding="utf-8")
    errors.write_text("".join(f"{x}\n" for x in lines if json.loads(x)["status"] >= 400), encoding="utf-8")
    if successes.stat().st_size:
        status, out = run_spec_check("hubspot", successes)
        assert status == 0, f"spec-check found non-conforming exchanges:\n{out}"
    if errors.stat().st_size:
        proc = subprocess.run(  # noqa: S603 - fixed interpreter, script and arguments
            [str(_spec_check_python()), "-c", _JSON_ERRORS, str(shared / "tools"), str(errors)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, (
            f"spec-check found non-conforming error answers:\n{proc.stdout}{proc.stderr}"
        )


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


def _a_short_sync(platform: HubSpotPlatform) -> None:
    """One pass over every endpoint the plugin calls."""
    platform.check()
    contacts = [c.id for c in platform.iter_contacts(["firstname"], FIELDS, {}) if isinstance(c, Contact)]
    purchases = [p for p in platform.iter_purchases(None) if isinstance(p, Purchase)]
    assert contacts
    assert purchases
    missing = {k for k, v in platform.inspect_fields(FIELDS).items() if v is None}
    platform.create_fields([f for f in FIELDS if f.key in missing])
    platform.update_field_options(
        SEGMENT.model_copy(update={"options": (*SEGMENT.options, FieldOption(value="new", label="New"))})
    )
    manual = platform.find_list("segsync · Champions") or platform.create_list(
        ListSpec(key="champions", name="segsync · Champions"), dynamic=False
    )
    platform.create_list(
        ListSpec(key="lost", name="segsync · Lost", filter_field=SEGMENT.key, filter_value="lost"),
        dynamic=True,
    )
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
    assert list(platform.list_members(manual.id)) == contacts[1:3]
    assert platform.get_list(manual.id) is not None


@pytest.mark.spec_conformance
def test_session_traffic_conforms(
    traffic_log: Path,
    make_sandbox: Callable[..., HubSpotSandbox],
    make_platform: Callable[..., HubSpotPlatform],
    demo_data: SeedData,
) -> None:
    _a_short_sync(make_platform(make_sandbox(demo_data), home_currency="USD"))
    check_hubspot_traffic(traffic_log)


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
    with pytest.raises(AssertionError, match="do not conform|non-conforming"):
        check_hubspot_traffic(log)


def test_the_conformance_check_passes_good_traffic(tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(_exchange(200, GOOD_PAGE) + "\n" + _exchange(404, GOOD_ERROR, "/crm/v3/lists/1") + "\n")
    check_hubspot_traffic(log)
