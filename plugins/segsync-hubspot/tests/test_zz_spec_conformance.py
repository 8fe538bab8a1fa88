"""Every exchange of this session's sandbox tests conforms to HubSpot's official OpenAPI specs.

conftest.py moves the ``spec_conformance`` test to the end of the run, after every test that
appends to the session traffic log; it also drives a short sync itself, so it checks every
endpoint the plugin uses even when run alone. :func:`segsync.testing.spec.assert_traffic_conforms`
runs spec-check unchanged on success exchanges and with a JSON reader for HubSpot's ``*/*``
error bodies on error answers (see its module docstring).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from segsync import Contact, ContactUpdate, FieldOption, FieldSpec, ListSpec, Purchase
from segsync.sandbox import SeedData
from segsync.testing.spec import assert_traffic_conforms
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

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
    assert_traffic_conforms("hubspot", traffic_log)


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
