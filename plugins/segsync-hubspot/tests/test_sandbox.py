"""The sandbox is as strict as HubSpot (raw HTTP requests a lenient client might send), and
``segsync sandbox hubspot --seed-from DIR`` serves users' own CSV exports.

These sandboxes keep no traffic log: several requests here are off-spec on purpose.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from segsync import Contact, Purchase, Rejection
from segsync.cli import main
from segsync.sandbox import FaultPlan, SeedData, load_seed_dir
from segsync.sandbox.seed import write_seed_dir
from segsync.testing import FakeClock
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
Answer = tuple[int, dict[str, str], Any]


def http(
    sb: HubSpotSandbox, method: str, path: str, body: Any = None, *, auth: str | None = "Bearer {}"
) -> Answer:
    """One request; ``auth`` is the Authorization header (``{}`` is the sandbox's token), None for none."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sb.base_url + path, data=data, method=method)  # noqa: S310 - loopback
    req.add_header("Content-Type", "application/json")
    if auth is not None:
        req.add_header("Authorization", auth.format(sb.secret))
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else None


def assert_hubspot_error(answer: Answer, status: int, category: str) -> dict[str, Any]:
    code, _, body = answer
    assert code == status, body
    assert body["status"] == "error"
    assert body["category"] == category
    assert body["message"]
    assert UUID.match(body["correlationId"])
    return body  # type: ignore[no-any-return]


@pytest.fixture
def sb(make_sandbox: Callable[..., HubSpotSandbox], small_data: SeedData) -> HubSpotSandbox:
    return make_sandbox(small_data, log=False)


def updates(n: int) -> dict[str, Any]:
    return {"inputs": [{"id": str(100 + i), "properties": {"firstname": "X"}} for i in range(n)]}


# -- batch and page maxima -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/crm/v3/objects/contacts/batch/update", updates(101)),
        (
            "POST",
            "/crm/v4/associations/deals/contacts/batch/read",
            {"inputs": [{"id": str(i)} for i in range(1001)]},
        ),
        (
            "POST",
            "/crm/v3/properties/contacts/batch/create",
            {
                "inputs": [
                    {
                        "name": f"p{i}",
                        "label": "P",
                        "type": "string",
                        "fieldType": "text",
                        "groupName": "contactinformation",
                    }
                    for i in range(101)
                ]
            },
        ),
    ],
)
def test_batches_over_the_maximum_are_refused(sb: HubSpotSandbox, method: str, path: str, body: Any) -> None:
    err = assert_hubspot_error(http(sb, method, path, body), 400, "VALIDATION_ERROR")
    assert "limit exceeded" in err["message"]


def test_batches_at_the_maximum_are_served(sb: HubSpotSandbox) -> None:
    status, _, body = http(sb, "POST", "/crm/v3/objects/contacts/batch/update", updates(100))
    assert status == 207, "ids 112.. do not exist: per-input errors"
    assert len(body["results"]) == 12
    assert body["numErrors"] == 88
    assert body["errors"][0]["context"]["ids"] == ["112"]
    status, _, body = http(
        sb,
        "POST",
        "/crm/v4/associations/deals/contacts/batch/read",
        {"inputs": [{"id": str(5000 + i)} for i in range(1000)]},
    )
    assert status == 207
    assert {r["from"]["id"] for r in body["results"]} == {
        "5001",
        "5002",
        "5003",
        "5004",
        "5005",
        "5007",
        "5008",
        "5009",
        "5010",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/crm/v3/objects/contacts?limit=101",
        "/crm/v3/objects/deals?limit=0",
        "/crm/v3/objects/contacts?limit=ten",
        "/crm/v3/objects/contacts?after=abc",
        "/crm/v3/objects/contacts?archived=maybe",
    ],
)
def test_bad_page_parameters_are_refused(sb: HubSpotSandbox, path: str) -> None:
    assert_hubspot_error(http(sb, "GET", path), 400, "VALIDATION_ERROR")


def test_membership_pages_are_at_most_250(sb: HubSpotSandbox) -> None:
    list_id = sb.add_user_list("Some list")
    assert http(sb, "GET", f"/crm/v3/lists/{list_id}/memberships?limit=250")[0] == 200
    assert_hubspot_error(
        http(sb, "GET", f"/crm/v3/lists/{list_id}/memberships?limit=251"), 400, "VALIDATION_ERROR"
    )


# -- object reads --------------------------------------------------------------------------


def test_contact_pages_are_strings_with_a_cursor_and_no_paging_at_the_end(sb: HubSpotSandbox) -> None:
    sb.delete_contact("101")
    status, _, first = http(
        sb, "GET", "/crm/v3/objects/contacts?limit=5&properties=email,firstname&properties=age"
    )
    assert status == 200
    assert [r["id"] for r in first["results"]] == ["100", "102", "103", "104", "105"]
    assert all(isinstance(v, str) for r in first["results"] for v in r["properties"].values())
    assert set(first["results"][0]["properties"]) == {
        "email",
        "firstname",
        "age",
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    }
    assert "email" not in first["results"][3 - 1]["properties"], (
        "a contact without email has no email property"
    )
    after = first["paging"]["next"]["after"]
    _, _, second = http(sb, "GET", f"/crm/v3/objects/contacts?limit=100&after={after}")
    assert [r["id"] for r in second["results"]] == [str(i) for i in range(106, 112)]
    assert "paging" not in second
    assert set(second["results"][0]["properties"]) >= {"firstname", "lastname", "email"}
    _, _, archived = http(sb, "GET", "/crm/v3/objects/contacts?archived=true")
    assert [r["id"] for r in archived["results"]] == ["101"]


def test_deals_carry_inline_associations_when_asked(sb: HubSpotSandbox) -> None:
    _, _, page = http(sb, "GET", "/crm/v3/objects/deals?limit=100&associations=contacts&properties=amount")
    deals = {r["id"]: r for r in page["results"]}
    assert deals["5001"]["associations"]["contacts"]["results"] == [{"id": "100", "type": "deal_to_contact"}]
    assert "associations" not in deals["5006"]
    assert deals["5005"]["properties"]["amount"] == "call me", "the CRM's raw string"
    assert "amount" not in deals["5004"]["properties"], "empty amounts are absent, as in HubSpot"
    _, _, plain = http(sb, "GET", "/crm/v3/objects/deals?limit=100")
    assert all("associations" not in r for r in plain["results"])


def test_pipelines_expose_closed_won_through_metadata(sb: HubSpotSandbox) -> None:
    _, _, body = http(sb, "GET", "/crm/v3/pipelines/deals")
    stages = {s["id"]: s["metadata"] for p in body["results"] for s in p["stages"]}
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["1002"] == {"isClosed": "true", "probability": "1.0"}


def test_association_reads_page_per_input_and_report_unknown_ids(
    make_sandbox: Callable[..., HubSpotSandbox], small_data: SeedData
) -> None:
    sb = make_sandbox(small_data, log=False, association_page_size=2)
    for cid in ("101", "102"):
        sb.associate("5001", cid)
    status, _, body = http(
        sb,
        "POST",
        "/crm/v4/associations/deals/contacts/batch/read",
        {"inputs": [{"id": "5001"}, {"id": "77"}, {"id": "5006"}]},
    )
    assert status == 207
    (result,) = body["results"]
    assert [t["toObjectId"] for t in result["to"]] == ["100", "101"]
    assert result["paging"]["next"]["after"] == "2"
    assert [e["context"]["ids"] for e in body["errors"]] == [["77"], ["5006"]]
    _, _, rest = http(
        sb,
        "POST",
        "/crm/v4/associations/deals/contacts/batch/read",
        {"inputs": [{"id": "5001", "after": "2"}]},
    )
    assert [t["toObjectId"] for t in rest["results"][0]["to"]] == ["102"]
    assert "paging" not in rest["results"][0]


# -- auth, scopes --------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic {}", "{}", "Bearer ", "bearer {}"])
def test_only_the_bearer_token_is_accepted(sb: HubSpotSandbox, auth: str | None) -> None:
    answer = http(sb, "GET", "/crm/v3/objects/contacts", auth=auth)
    assert_hubspot_error(answer, 401, "INVALID_AUTHENTICATION")
    assert sb.secret not in json.dumps(answer[2])


def test_missing_scopes_are_named(make_sandbox: Callable[..., HubSpotSandbox]) -> None:
    sb = make_sandbox(SeedData([], []), log=False, scopes={"crm.lists.read"})
    assert http(sb, "GET", "/crm/v3/lists/?listIds=1")[0] == 200
    err = assert_hubspot_error(
        http(
            sb,
            "PUT",
            "/crm/v3/lists/1/memberships/add-and-remove",
            {"recordIdsToAdd": [], "recordIdsToRemove": []},
        ),
        403,
        "MISSING_SCOPES",
    )
    assert err["context"]["requiredScopes"] == ["crm.lists.write"]
    assert err["errors"][0]["context"]["requiredScopes"] == ["crm.lists.write"]


# -- writes: required fields and values ----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"recordIdsToAdd": ["100"]},
        {"recordIdsToRemove": ["100"]},
        {"recordIdsToAdd": [100], "recordIdsToRemove": []},
        {"recordIdsToAdd": ["100"], "recordIdsToRemove": ["100"]},
        ["100"],
    ],
)
def test_add_and_remove_needs_both_lists(sb: HubSpotSandbox, body: Any) -> None:
    list_id = sb.add_user_list("Manual")
    assert_hubspot_error(
        http(sb, "PUT", f"/crm/v3/lists/{list_id}/memberships/add-and-remove", body), 400, "VALIDATION_ERROR"
    )


def test_add_and_remove_answers_with_the_spec_keys(sb: HubSpotSandbox) -> None:
    list_id = sb.add_user_list("Manual")
    status, _, body = http(
        sb,
        "PUT",
        f"/crm/v3/lists/{list_id}/memberships/add-and-remove",
        {"recordIdsToAdd": ["100", "101", "55"], "recordIdsToRemove": ["102"]},
    )
    assert status == 200
    assert body == {"recordsIdsAdded": ["100", "101"], "recordIdsRemoved": [], "recordIdsMissing": ["55"]}


def prop(**kw: Any) -> dict[str, Any]:
    base = {
        "name": "segsync_x",
        "label": "X",
        "type": "number",
        "fieldType": "number",
        "groupName": "contactinformation",
    }
    return {k: v for k, v in {**base, **kw}.items() if v is not None}


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        (prop(fieldType=None), "missing required field(s): fieldType"),
        (prop(fieldType="text"), "does not go with"),
        (prop(type="enumeration", fieldType="select"), "need options"),
        (
            prop(type="enumeration", fieldType="select", options=[{"label": "A", "value": "a"}]),
            "label, value and hidden",
        ),
        (prop(options=[{"label": "A", "value": "a", "hidden": False}]), "only enumeration"),
        (prop(groupName="segsync"), "does not exist"),
        (prop(name="Segsync X"), "lower case"),
        (prop(type="money"), "unknown type"),
    ],
)
def test_property_definitions_are_validated(
    sb: HubSpotSandbox, definition: dict[str, Any], words: str
) -> None:
    err = assert_hubspot_error(
        http(sb, "POST", "/crm/v3/properties/contacts/batch/create", {"inputs": [definition]}),
        400,
        "VALIDATION_ERROR",
    )
    assert words in err["message"]
    assert_hubspot_error(http(sb, "POST", "/crm/v3/properties/contacts", definition), 400, "VALIDATION_ERROR")


def test_existing_property_names_conflict(sb: HubSpotSandbox) -> None:
    status, _, body = http(
        sb,
        "POST",
        "/crm/v3/properties/contacts/batch/create",
        {"inputs": [prop(name="age"), prop(name="segsync_y")]},
    )
    assert status == 207
    assert [r["name"] for r in body["results"]] == ["segsync_y"]
    assert body["errors"][0]["category"] == "OBJECT_ALREADY_EXISTS"
    assert_hubspot_error(
        http(sb, "POST", "/crm/v3/properties/contacts", prop(name="age")), 409, "OBJECT_ALREADY_EXISTS"
    )
    assert http(sb, "POST", "/crm/v3/properties/contacts", prop(name="segsync_z"))[0] == 201


@pytest.mark.parametrize(
    ("kind", "value", "stored", "code"),
    [
        ("number", "12.50", "12.5", None),
        ("number", "abc", None, "INVALID_DECIMAL"),
        ("number", " 1", None, "INVALID_DECIMAL"),
        ("date", "2024-02-29", "2024-02-29", None),
        ("date", "1709164800000", "2024-02-29", None),
        ("date", "1709164800001", None, "INVALID_DATE"),
        ("date", "2024-02-30", None, "INVALID_DATE"),
        ("date", "29/02/2024", None, "INVALID_DATE"),
        ("enumeration", "b", "b", None),
        ("enumeration", "c", None, "INVALID_OPTION"),
        ("string", "anything · at all", "anything · at all", None),
    ],
)
def test_written_values_are_validated_per_type(
    sb: HubSpotSandbox, kind: str, value: str, stored: str | None, code: str | None
) -> None:
    ftype = {"number": "number", "date": "date", "enumeration": "select", "string": "text"}[kind]
    sb.add_user_property("segsync_v", kind, ftype, options=("a", "b") if kind == "enumeration" else ())
    status, _, body = http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "100", "properties": {"segsync_v": value}}]},
    )
    if code is None:
        assert status == 200
        assert body["results"][0]["properties"]["segsync_v"] == stored
        assert sb.contact_values("100")["segsync_v"] == stored
    else:
        assert status == 207
        assert body["errors"][0]["errors"][0]["code"] == code
        assert "segsync_v" not in sb.contact_values("100")


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"no_such": "1"}, "PROPERTY_DOESNT_EXIST"),
        ({"hs_object_id": "1"}, "READ_ONLY_VALUE"),
        ({"firstname": 5}, "INVALID_TYPE"),
    ],
)
def test_unknown_and_read_only_properties_fail_per_input(
    sb: HubSpotSandbox, props: dict[str, Any], code: str
) -> None:
    status, _, body = http(
        sb, "POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [{"id": "100", "properties": props}]}
    )
    assert status == 207
    assert body["results"] == []
    assert body["errors"][0]["errors"][0]["code"] == code


def test_an_empty_string_clears_and_duplicate_ids_are_refused(sb: HubSpotSandbox) -> None:
    assert "firstname" in sb.contact_values("100")
    status, _, _ = http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "100", "properties": {"firstname": ""}}]},
    )
    assert status == 200
    assert "firstname" not in sb.contact_values("100")
    twice = {"inputs": [{"id": "100", "properties": {}}, {"id": "100", "properties": {}}]}
    assert_hubspot_error(
        http(sb, "POST", "/crm/v3/objects/contacts/batch/update", twice), 400, "VALIDATION_ERROR"
    )


# -- lists ---------------------------------------------------------------------------------


def test_list_names_are_unique_case_insensitively(sb: HubSpotSandbox) -> None:
    body = {"name": "segsync · VIP", "objectTypeId": "0-1", "processingType": "MANUAL"}
    status, _, created = http(sb, "POST", "/crm/v3/lists/", body)
    assert status == 200
    assert created["list"]["listVersion"] == 1
    err = assert_hubspot_error(
        http(sb, "POST", "/crm/v3/lists/", {**body, "name": "SEGSYNC · vip"}), 400, "VALIDATION_ERROR"
    )
    assert err["subCategory"] == "ILS.DUPLICATE_LIST_NAMES"
    _, _, found = http(sb, "GET", "/crm/v3/lists/object-type-id/0-1/name/Segsync%20%C2%B7%20Vip")
    assert found["list"]["listId"] == created["list"]["listId"]
    assert_hubspot_error(
        http(sb, "GET", "/crm/v3/lists/object-type-id/0-1/name/nope"), 404, "OBJECT_NOT_FOUND"
    )
    assert http(sb, "DELETE", f"/crm/v3/lists/{created['list']['listId']}")[0] == 204
    assert_hubspot_error(
        http(sb, "GET", f"/crm/v3/lists/{created['list']['listId']}"), 404, "OBJECT_NOT_FOUND"
    )
    assert http(sb, "POST", "/crm/v3/lists/", body)[0] == 200, "a deleted list's name is free again"


def _dynamic(**branch: Any) -> dict[str, Any]:
    flt = {
        "filterType": "PROPERTY",
        "property": "segsync_seg",
        "operation": {
            "operationType": "ENUMERATION",
            "operator": "IS_ANY_OF",
            "values": ["a"],
            "includeObjectsWithNoValueSet": False,
        },
    }
    and_branch = {
        "filterBranchType": "AND",
        "filterBranchOperator": "AND",
        "filterBranches": [],
        "filters": [flt],
    }
    root = {
        "filterBranchType": "OR",
        "filterBranchOperator": "OR",
        "filterBranches": [and_branch],
        "filters": [],
        **branch,
    }
    return {"name": "Dyn", "objectTypeId": "0-1", "processingType": "DYNAMIC", "filterBranch": root}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"objectTypeId": "0-1", "processingType": "MANUAL"}, "missing required field(s) name"),
        ({"name": "x", "objectTypeId": "0-1", "processingType": "DYNAMIC"}, "need a filterBranch"),
        ({**_dynamic(), "processingType": "MANUAL"}, "take no filterBranch"),
        (_dynamic(filterBranchType="AND"), "root filter branch"),
        (
            {**_dynamic(), "filterBranch": {"filterBranchType": "OR", "filters": [], "filterBranches": []}},
            "filterBranchOperator",
        ),
        ({**_dynamic(), "objectTypeId": "0-3"}, "0-1"),
    ],
)
def test_list_definitions_are_validated(sb: HubSpotSandbox, body: dict[str, Any], words: str) -> None:
    sb.add_user_property("segsync_seg", "enumeration", "select", options=("a", "b"))
    err = assert_hubspot_error(http(sb, "POST", "/crm/v3/lists/", body), 400, "VALIDATION_ERROR")
    assert words in err["message"]


def test_dynamic_lists_follow_the_property_and_refuse_manual_changes(sb: HubSpotSandbox) -> None:
    sb.add_user_property("segsync_seg", "enumeration", "select", options=("a", "b"))
    _, _, created = http(sb, "POST", "/crm/v3/lists/", _dynamic())
    list_id = created["list"]["listId"]
    http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "104", "properties": {"segsync_seg": "a"}}]},
    )
    _, _, members = http(sb, "GET", f"/crm/v3/lists/{list_id}/memberships")
    assert [m["recordId"] for m in members["results"]] == ["104"]
    assert_hubspot_error(
        http(
            sb,
            "PUT",
            f"/crm/v3/lists/{list_id}/memberships/add-and-remove",
            {"recordIdsToAdd": ["100"], "recordIdsToRemove": []},
        ),
        400,
        "VALIDATION_ERROR",
    )


# -- rate limits, faults, traffic log ------------------------------------------------------


def test_the_ten_second_window_answers_429_with_headers(
    make_sandbox: Callable[..., HubSpotSandbox], clock: FakeClock
) -> None:
    sb = make_sandbox(SeedData([], []), log=False, rate_limit=2)
    first = http(sb, "GET", "/crm/v3/lists/?listIds=1")
    assert first[1]["X-HubSpot-RateLimit-Max"] == "2"
    assert first[1]["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first[1]["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first[1]["X-HubSpot-RateLimit-Daily-Remaining"] == str(625_000 - 1)
    http(sb, "GET", "/crm/v3/lists/?listIds=1")
    status, headers, body = http(sb, "GET", "/crm/v3/lists/?listIds=1")
    assert status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in headers, "HubSpot does not document Retry-After on 429"
    clock.advance(10)
    assert http(sb, "GET", "/crm/v3/lists/?listIds=1")[0] == 200


def test_retry_after_and_daily_limits_are_configurable(make_sandbox: Callable[..., HubSpotSandbox]) -> None:
    sb = make_sandbox(SeedData([], []), log=False, rate_limit=1, retry_after_header=True)
    http(sb, "GET", "/crm/v3/lists/?listIds=1")
    assert http(sb, "GET", "/crm/v3/lists/?listIds=1")[1]["Retry-After"] == "10"
    daily = make_sandbox(SeedData([], []), log=False, daily_limit=1)
    http(daily, "GET", "/crm/v3/lists/?listIds=1")
    status, _, body = http(daily, "GET", "/crm/v3/lists/?listIds=1")
    assert (status, body["policyName"]) == (429, "DAILY")


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_faults_answer_with_hubspot_error_bodies(sb: HubSpotSandbox, kind: str) -> None:
    sb.server.set_faults(FaultPlan(script=[kind]))
    assert_hubspot_error(http(sb, "GET", "/crm/v3/lists/?listIds=1"), int(kind), "INTERNAL_ERROR")
    assert http(sb, "GET", "/crm/v3/lists/?listIds=1")[0] == 200


def test_the_traffic_log_redacts_the_token(
    make_sandbox: Callable[..., HubSpotSandbox], tmp_path: Path, small_data: SeedData
) -> None:
    log = tmp_path / "t.jsonl"
    sb = HubSpotSandbox(secret="pat-na1-logged-secret", traffic_log=log)
    sb.seed(small_data)
    sb.start()
    try:
        http(sb, "GET", "/crm/v3/objects/contacts?limit=2")
        http(sb, "GET", "/crm/v3/objects/contacts", auth="Bearer wrong-but-secret")
    finally:
        sb.stop()
    text = log.read_text()
    assert sb.secret not in text
    assert "wrong-but-secret" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["status"] for e in entries] == [200, 401]
    assert entries[0]["request_headers"]["Authorization"] == "REDACTED"


# -- segsync sandbox hubspot --seed-from DIR ------------------------------------------------

CONTACTS = "id,email,firstname,lastname,country,city,age,jobtitle,company_size,createdate\n"
PURCHASES = "deal_id,contact_id,amount,currency,closedate,stage\n"


def _write(folder: Path, contacts: str, purchases: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "contacts.csv").write_text(CONTACTS + contacts, encoding="utf-8")
    (folder / "purchases.csv").write_text(PURCHASES + purchases, encoding="utf-8")
    return folder


GOOD_CONTACTS = (
    "11,a@example.com,Ada,L,GB,London,36,,,2024-01-01\n12,,No,Mail,FR,Paris,,,,2024-02-01T10:00:00Z\n"
)
GOOD_PURCHASES = (
    "901,11,120.50,USD,2025-12-01T12:00:00Z,won\n902,11,,USD,2025-12-02,won\n903,,5,USD,2025-12-03,won\n"
)


@pytest.mark.parametrize(
    ("contacts", "purchases", "where"),
    [
        (
            "11,a@example.com,Ada,L,GB,London,36,,,2024-01-01\n,b@example.com,B,B,FR,Paris,,,,\n",
            "",
            "contacts.csv:3:",
        ),
        (
            "11,a@example.com,Ada,L,GB,London,36,,,2024-01-01\nabc,b@example.com,B,B,FR,Paris,,,,\n",
            "",
            "contacts.csv:3:",
        ),
        (GOOD_CONTACTS, "901,99,1,USD,2025-01-01,won\n", "purchases.csv:2:"),
        (GOOD_CONTACTS, "901,11,1,USD,2025-01-01,won\n901,11,2,USD,2025-01-01,won\n", "purchases.csv:3:"),
        (GOOD_CONTACTS, "901,11,1,USD,2025-01-01,maybe\n", "purchases.csv"),
    ],
)
def test_bad_csv_is_a_one_line_error_naming_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], contacts: str, purchases: str, where: str
) -> None:
    folder = _write(tmp_path / "seed", contacts, purchases)
    status = main(["sandbox", "hubspot", "--token", "t", "--seed-from", str(folder)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1, err
    assert err.startswith("segsync: error: ")
    assert where in err
    assert "Traceback" not in err


def test_missing_files_and_columns_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "hubspot", "--token", "t", "--seed-from", str(tmp_path)]) == 2
    assert "contacts.csv: file not found" in capsys.readouterr().err
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "contacts.csv").write_text("id,email\n1,a@example.com\n")
    (folder / "purchases.csv").write_text(PURCHASES)
    assert main(["sandbox", "hubspot", "--token", "t", "--seed-from", str(folder)]) == 2
    assert "missing column(s) firstname" in capsys.readouterr().err


def test_seeded_csv_is_served_as_hubspot_would(
    tmp_path: Path,
    make_sandbox: Callable[..., HubSpotSandbox],
    make_platform: Callable[..., HubSpotPlatform],
) -> None:
    data = load_seed_dir(_write(tmp_path / "seed", GOOD_CONTACTS, GOOD_PURCHASES))
    platform = make_platform(make_sandbox(data), home_currency="USD")
    contacts = {
        c.id: c for c in platform.iter_contacts(["firstname", "age"], [], {}) if isinstance(c, Contact)
    }
    assert contacts["11"].properties == {"firstname": "Ada", "age": "36"}
    assert contacts["12"].email is None
    pulled: set[tuple[str, object]] = set()
    for r in platform.iter_purchases(None):
        assert isinstance(r, Purchase | Rejection)
        pulled.add((r.id, r.amount) if isinstance(r, Purchase) else (r.record_id, r.reason))
    assert pulled == {
        ("901", Decimal("120.50")),
        ("902", "won deal has no amount"),
        ("903", "won deal has no associated contact"),
    }


def test_the_sandbox_command_serves_a_seed_folder(
    tmp_path: Path, traffic_log: Path, demo_data: SeedData, make_platform: Callable[..., HubSpotPlatform]
) -> None:
    """The real command in a child process, stopped by its pid; it writes the traffic log asked for."""
    folder = tmp_path / "seed"
    write_seed_dir(demo_data, folder)
    command = [
        "sandbox",
        "hubspot",
        "--token",
        "cli-token",
        "--seed-from",
        str(folder),
        "--traffic-log",
        str(traffic_log),
    ]
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "segsync.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        platform = make_platform(base_url=line.rsplit(" ", 1)[1].strip(), token="cli-token")
        pulled = {c.id for c in platform.iter_contacts([], [], {}) if isinstance(c, Contact)}
        assert pulled == {c.id for c in demo_data.contacts}
        assert platform.find_list("segsync · nothing yet") is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert traffic_log.read_text().count("\n") >= 2, "the child's exchanges are in its traffic log"
