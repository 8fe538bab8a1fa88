"""The sandbox refuses what Brevo refuses and answers the way Brevo does (raw HTTP, no SDK)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segsync.sandbox import FaultPlan, SeedData, load_seed_dir
from segsync.sandbox.seed import SeedContact, SeedPurchase, write_seed_dir
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import KEY, start_sandbox


@pytest.fixture
def http(quiet_sandbox: BrevoSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=quiet_sandbox.base_url, headers={"api-key": KEY}, timeout=5) as client:
        yield client


def error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    return str(body["message"])


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"api-key": "xkeysib-wrong"}, {"Authorization": f"Bearer {KEY}"}],
)
def test_only_the_api_key_header_authenticates(quiet_sandbox, headers):
    resp = httpx.get(quiet_sandbox.base_url + "/contacts", headers=headers)
    assert error(resp, 401, "unauthorized") == "Key not found"


def test_oauth_token_calls_are_counted_and_refused(quiet_sandbox):
    resp = httpx.post(quiet_sandbox.server.base + "/realms/partner/oauth/token", json={})
    assert resp.status_code == 401
    assert quiet_sandbox.foreign_calls == 1


# -- request validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/contacts", 1001),
        ("/contacts/lists", 51),
        ("/contacts/folders", 51),
        ("/orders", 101),
        ("/crm/deals", 51),
    ],
)
def test_page_sizes_over_the_maximum_are_refused(http, path, limit):
    assert "at most" in error(http.get(path, params={"limit": limit}), 400, "out_of_range")
    assert http.get(path, params={"limit": limit - 1}).status_code == 200


def test_list_member_pages_stop_at_500(http):
    folder = http.post("/contacts/folders", json={"name": "segsync"}).json()["id"]
    lst = http.post("/contacts/lists", json={"name": "L", "folderId": folder}).json()["id"]
    error(http.get(f"/contacts/lists/{lst}/contacts", params={"limit": 501}), 400, "out_of_range")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/contacts", {"limt": 10}),
        ("/contacts/attributes", {"limit": 10}),
        ("/crm/deals", {"filters[foo]": "x"}),
        ("/contacts", {"modifiedSince": "last tuesday"}),
        ("/contacts", {"sort": "up"}),
        ("/contacts", {"segmentId": 3}),
        ("/crm/deals", {"sortBy": "amount"}),
    ],
)
def test_unknown_or_malformed_query_parameters_are_refused(http, path, params):
    error(http.get(path, params=params), 400, "invalid_parameter")


def _list(http: httpx.Client) -> int:
    folder = http.post("/contacts/folders", json={"name": "segsync"}).json()["id"]
    return int(http.post("/contacts/lists", json={"name": "L", "folderId": folder}).json()["id"])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ids": list(range(1000, 1151))}, "out_of_range"),
        ({"ids": [1000], "emails": ["x@example.com"]}, "invalid_parameter"),
        ({"ids": []}, "missing_parameter"),
        ({"ids": ["1000"]}, "invalid_parameter"),
        ({"ids": [True]}, "invalid_parameter"),
        ({"all": True}, "invalid_parameter"),
        ({}, "invalid_parameter"),
    ],
)
def test_membership_bodies_brevo_refuses(http, body, code):
    error(http.post(f"/contacts/lists/{_list(http)}/contacts/add", json=body), 400, code)


def test_membership_changes_answer_201_with_per_record_outcomes(http, quiet_sandbox):
    lst = _list(http)
    before = quiet_sandbox.contact("1000")["modifiedAt"]
    quiet_sandbox.clock.sleep(5)
    added = http.post(f"/contacts/lists/{lst}/contacts/add", json={"ids": [1000, 1001, 999999]})
    assert added.status_code == 201
    assert added.json() == {"contacts": {"success": [1000, 1001], "failure": [999999]}}
    again = http.post(f"/contacts/lists/{lst}/contacts/add", json={"ids": [1000]})
    assert again.json() == {"contacts": {"success": [], "failure": [1000]}}, "already in the list"
    assert quiet_sandbox.contact("1000")["modifiedAt"] > before, "membership changes modify the contact"
    removed = http.post(
        f"/contacts/lists/{lst}/contacts/remove", json={"emails": ["barbara.hopper.0@example.com"]}
    )
    assert removed.status_code == 201
    assert removed.json() == {"contacts": {"success": ["barbara.hopper.0@example.com"], "failure": []}}
    everyone = http.post(f"/contacts/lists/{lst}/contacts/remove", json={"all": True}).json()["contacts"]
    assert everyone["total"] == 1
    assert quiet_sandbox.list_member_ids(str(lst)) == set()
    error(http.post("/contacts/lists/424242/contacts/add", json={"ids": [1000]}), 404, "document_not_found")


# -- attributes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "body", "code"),
    [
        ("category", {"type": "text", "enumeration": [{"value": 1, "label": "A"}]}, "invalid_parameter"),
        ("category", {"type": "category"}, "missing_parameter"),
        ("category", {"enumeration": [{"value": "1", "label": "A"}]}, "invalid_parameter"),
        ("category", {"enumeration": [{"value": 1, "label": "A" * 201}]}, "invalid_parameter"),
        (
            "category",
            {"enumeration": [{"value": 1, "label": "A"}, {"value": 1, "label": "B"}]},
            "duplicate_parameter",
        ),
        ("normal", {"type": "float", "enumeration": [{"value": 1, "label": "A"}]}, "invalid_parameter"),
        ("normal", {"type": "category"}, "invalid_parameter"),
        ("normal", {"type": "id"}, "invalid_parameter"),
        ("normal", {"enumeration": None, "type": "float"}, "invalid_parameter"),
        ("normal", {"type": "float", "colour": "red"}, "invalid_parameter"),
        ("global", {"type": "text"}, "missing_parameter"),
        ("weird", {"type": "text"}, "invalid_parameter"),
    ],
)
def test_attribute_creation_brevo_refuses(http, category, body, code):
    error(http.post(f"/contacts/attributes/{category}/SEGSYNC_X", json=body), 400, code)


def test_attributes_are_created_once_with_201_and_updated_with_204(http):
    created = http.post(
        "/contacts/attributes/category/segsync_x", json={"enumeration": [{"value": 1, "label": "A"}]}
    )
    assert created.status_code == 201
    assert created.content == b""
    assert "already exists" in error(
        http.post("/contacts/attributes/normal/SEGSYNC_X", json={"type": "text"}), 400, "duplicate_parameter"
    )
    grown = {"enumeration": [{"value": 1, "label": "A"}, {"value": 2, "label": "B"}]}
    assert http.put("/contacts/attributes/category/SEGSYNC_X", json=grown).status_code == 204
    error(http.put("/contacts/attributes/normal/SEGSYNC_X", json=grown), 404, "document_not_found")
    attrs = {a["name"]: a for a in http.get("/contacts/attributes").json()["attributes"]}
    assert attrs["SEGSYNC_X"] == {"name": "SEGSYNC_X", "category": "category", "type": "text", **grown}


# -- contacts ----------------------------------------------------------------------------------


def test_emails_with_a_plus_resolve_whether_encoded_or_not(http, quiet_sandbox):
    plus = quiet_sandbox.contact("1013")["email"]
    assert "+" in plus
    assert http.get(f"/contacts/{plus}").json()["id"] == 1013
    encoded = plus.replace("+", "%2B")
    assert http.get(f"/contacts/{encoded}", params={"identifierType": "email_id"}).json()["id"] == 1013
    error(http.get(f"/contacts/{plus.replace('+', '%20')}"), 404, "document_not_found")


def test_contact_updates_need_known_attributes_ignore_wrong_types_and_clear_on_empty(http, quiet_sandbox):
    error(http.put("/contacts/1000", json={"attributes": {"NOPE": 1}}), 400, "invalid_parameter")
    assert http.put("/contacts/1000", json={"attributes": {"AGE": "forty"}}).status_code == 204
    assert quiet_sandbox.contact("1000")["attributes"].get("AGE") != "forty", "wrong types are ignored"
    assert http.put("/contacts/1000", json={"attributes": {"CITY": ""}}).status_code == 204
    assert "CITY" not in quiet_sandbox.contact("1000")["attributes"]
    error(
        http.put("/contacts/999999?identifierType=contact_id", json={"attributes": {}}),
        404,
        "document_not_found",
    )


# -- imports -----------------------------------------------------------------------------------


def _import_body(http: httpx.Client, **overrides):
    body = {
        "jsonBody": [{"email": "barbara.hopper.0@example.com", "attributes": {"CITY": "Lyon"}}],
        "listIds": [_list(http)],
        "updateExistingContacts": True,
    }
    return {**body, **overrides}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"listIds": None}, "missing_parameter"),
        ({"emptyContactsAttributes": True, "updateExistingContacts": False}, "invalid_parameter"),
        ({"fileBody": "EMAIL\na@b.co"}, "missing_parameter"),
        ({"jsonBody": []}, "invalid_parameter"),
        ({"jsonBody": [{"email": "a@b.co", "id": 4}]}, "invalid_parameter"),
        ({"listIds": [987]}, "invalid_parameter"),
        ({"updateEnabled": True}, "invalid_parameter"),
    ],
)
def test_imports_brevo_refuses(http, overrides, code):
    body = {k: v for k, v in _import_body(http, **overrides).items() if v is not None}
    error(http.post("/contacts/import", json=body), 400, code)


def test_imports_over_10_mb_are_refused(http):
    items = [{"email": f"c{i}@example.com", "attributes": {"CITY": "x" * 200}} for i in range(50_000)]
    resp = http.post("/contacts/import", json=_import_body(http, jsonBody=items))
    assert "larger than 10 MB" in error(resp, 400, "out_of_range")


def test_import_list_requirement_can_be_relaxed(clock, seed_data):
    sandbox = start_sandbox(clock, seed_data, None, require_import_list=False)
    try:
        body = {"jsonBody": [{"email": "a@example.com", "attributes": {}}], "updateExistingContacts": True}
        resp = httpx.post(sandbox.base_url + "/contacts/import", json=body, headers={"api-key": KEY})
        assert resp.status_code == 202
    finally:
        sandbox.stop()


def test_import_lifecycle_one_step_per_poll_applied_at_completion(http, quiet_sandbox):
    lst = _list(http)
    body = {
        "jsonBody": [
            {
                "email": "barbara.hopper.0@example.com",
                "attributes": {"CITY": "Lyon", "AGE": "old", "NOPE": 1},
            },
            {"email": "new.person@example.com", "attributes": {"FIRSTNAME": "New"}},
            {"email": "not-an-email", "attributes": {"FIRSTNAME": "X"}},
        ],
        "listIds": [lst],
        "updateExistingContacts": True,
    }
    accepted = http.post("/contacts/import", json=body)
    assert accepted.status_code == 202
    pid = accepted.json()["processId"]
    statuses = []
    for _ in range(3):
        statuses.append(http.get(f"/processes/{pid}").json()["status"])
        if statuses[-1] != "completed":
            assert quiet_sandbox.contact("1000")["attributes"]["CITY"] != "Lyon", "nothing applied before"
    assert statuses == ["queued", "in_process", "completed"]
    done = http.get(f"/processes/{pid}").json()
    assert done["name"] == "IMPORTUSER"
    assert done["info"]["import"]["invalid_emails"].endswith("invalid_emails.csv")
    barbara = quiet_sandbox.contact("1000")
    assert barbara["attributes"]["CITY"] == "Lyon"
    assert "NOPE" not in barbara["attributes"], "unknown attributes are ignored"
    assert barbara["attributes"].get("AGE") != "old", "values of the wrong type are ignored"
    assert lst in barbara["listIds"]
    new = [c for c in quiet_sandbox.contacts.values() if c.email == "new.person@example.com"]
    assert len(new) == 1, "unknown emails become new contacts"
    error(http.get("/processes/4242"), 404, "document_not_found")


def test_imports_complete_by_themselves_and_in_order(http, quiet_sandbox):
    first = http.post("/contacts/import", json=_import_body(http)).json()["processId"]
    second_body = _import_body(
        http, jsonBody=[{"email": "barbara.hopper.0@example.com", "attributes": {"CITY": "Nice"}}]
    )
    second = http.post("/contacts/import", json=second_body).json()["processId"]
    for _ in range(3):
        status = http.get(f"/processes/{second}").json()["status"]
    assert status == "completed"
    assert quiet_sandbox.processes[first].done, "earlier imports complete first"
    assert quiet_sandbox.contact("1000")["attributes"]["CITY"] == "Nice"
    third = http.post("/contacts/import", json=_import_body(http)).json()["processId"]
    quiet_sandbox.clock.sleep(30)
    assert quiet_sandbox.contact("1000")["attributes"]["CITY"] == "Lyon"
    assert http.get(f"/processes/{third}").json()["status"] == "completed"


def test_erasing_imports_treat_jsonbody_as_a_table(http, quiet_sandbox):
    body = _import_body(
        http,
        jsonBody=[
            {"email": "barbara.hopper.0@example.com", "attributes": {"CITY": ""}},
            {"email": quiet_sandbox.contact("1001")["email"], "attributes": {"FIRSTNAME": "Renamed"}},
        ],
        emptyContactsAttributes=True,
    )
    pid = http.post("/contacts/import", json=body).json()["processId"]
    for _ in range(3):
        http.get(f"/processes/{pid}")
    assert "CITY" not in quiet_sandbox.contact("1000")["attributes"]
    other = quiet_sandbox.contact("1001")["attributes"]
    assert other["FIRSTNAME"] == "Renamed"
    assert "CITY" not in other, "a column the item lacks is empty, so it erases"


# -- rate limits and faults --------------------------------------------------------------------


def test_every_answer_carries_rate_headers_and_the_eleventh_call_in_a_second_is_429(http, quiet_sandbox):
    first = http.get("/contacts/attributes")
    assert first.headers["x-sib-ratelimit-limit"] == "10"
    assert first.headers["x-sib-ratelimit-remaining"] == "9"
    assert first.headers["x-sib-ratelimit-reset"] == "1"
    for _ in range(9):
        assert http.get("/contacts/attributes").status_code == 200
    limited = http.get("/contacts/attributes")
    assert error(limited, 429, "too_many_requests")
    assert limited.headers["x-sib-ratelimit-remaining"] == "0"
    assert "retry-after" not in limited.headers
    assert quiet_sandbox.rate_limited == 1
    quiet_sandbox.clock.sleep(1)
    assert http.get("/contacts/attributes").status_code == 200


def test_the_hourly_bucket_resets_after_an_hour(clock, seed_data):
    sandbox = start_sandbox(clock, seed_data, None, other_per_hour=3, retry_after_on_429=True)
    try:
        with httpx.Client(base_url=sandbox.base_url, headers={"api-key": KEY}) as http:
            assert [http.get("/crm/pipeline/details/all").status_code for _ in range(3)] == [200] * 3
            limited = http.get("/account")
            assert limited.status_code == 429
            assert limited.headers["x-sib-ratelimit-reset"] == "3600"
            assert limited.headers["retry-after"] == "3600"
            assert http.get("/contacts/attributes").status_code == 200, "the contacts bucket is separate"
            clock.sleep(3600)
            assert http.get("/account").status_code == 200
    finally:
        sandbox.stop()


def test_injected_faults_look_like_brevos(http, quiet_sandbox):
    quiet_sandbox.server.set_faults(FaultPlan(script=["429", "502", "500", "ok"]))
    burst = http.get("/contacts/attributes")
    assert burst.status_code == 429
    assert burst.headers["x-sib-ratelimit-reset"] == "1"
    gateway = http.get("/contacts/attributes")
    assert gateway.status_code == 502
    assert gateway.headers["content-type"].startswith("text/html")
    assert http.get("/contacts/attributes").json()["code"] == "internal_error"
    assert http.get("/contacts/attributes").status_code == 200
    assert quiet_sandbox.faults_injected == {"429": 1, "502": 1, "500": 1}


# -- seeding and snapshots ----------------------------------------------------------------------


def test_seed_from_the_shared_csv_format(tmp_path: Path, clock):
    data = SeedData(
        contacts=[
            SeedContact("7", "a+b@example.com", "A", "B", "FR", "Paris", "41", "CEO", "1-10", "2024-01-01"),
            SeedContact("8", "", "C", "D", "", "", "", "", "", "2024-01-02T10:00:00Z"),
        ],
        purchases=[
            SeedPurchase("d1", "7", "10.50", "EUR", "2024-02-01T12:00:00Z", "won"),
            SeedPurchase("d2", "8", "", "USD", "", "open"),
        ],
    )
    write_seed_dir(data, tmp_path)
    sandbox = BrevoSandbox(secret=KEY, clock=clock)
    sandbox.seed(load_seed_dir(tmp_path))
    assert sandbox.contacts[7].attributes == {
        "FIRSTNAME": "A",
        "LASTNAME": "B",
        "COUNTRY": "FR",
        "CITY": "Paris",
        "AGE": 41.0,
        "JOB_TITLE": "CEO",
        "COMPANY_SIZE": "1-10",
    }
    assert sandbox.contacts[8].email is None
    assert sandbox.deals["d1"].attributes["deal_currency"] == "EUR"
    assert sandbox.deals["d1"].attributes["amount"] == 10.5
    assert "amount" not in sandbox.deals["d2"].attributes
    with pytest.raises(ValueError, match="Brevo contact ids are integers"):
        sandbox.seed(SeedData([SeedContact("x1", "", "", "", "", "", "", "", "", "")], []))
    with pytest.raises(ValueError, match="appears twice"):
        sandbox.seed(SeedData([], [data.purchases[0]]))


def test_snapshot_shows_segsync_fields_and_lists_only(http, quiet_sandbox):
    folder = http.post("/contacts/folders", json={"name": "segsync"}).json()["id"]
    mine = http.post("/contacts/lists", json={"name": "segsync · VIP", "folderId": folder}).json()["id"]
    http.post("/contacts/lists", json={"name": "segsync · synced contacts", "folderId": folder})
    other = http.post("/contacts/folders", json={"name": "Newsletter"}).json()["id"]
    http.post("/contacts/lists", json={"name": "Weekly", "folderId": other})
    http.post(f"/contacts/lists/{mine}/contacts/add", json={"ids": [1001, 1000]})
    http.post(
        "/contacts/attributes/category/SEGSYNC_SEG", json={"enumeration": [{"value": 1, "label": "VIP"}]}
    )
    http.put("/contacts/1000", json={"attributes": {"SEGSYNC_SEG": 1, "CITY": "Oslo"}})
    snap = quiet_sandbox.snapshot()
    assert snap == {
        "fields": {"1000": {"segsync_seg": "VIP"}},
        "lists": {"segsync · VIP": ["1000", "1001"]},
        "field_defs": ["segsync_seg"],
        "list_names": ["segsync · VIP"],
    }
    json.dumps(snap)


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_contact_pages_cover_every_contact_once_in_either_order(http, quiet_sandbox, sort):
    order = list(quiet_sandbox.state.order)
    seen: list[int] = []
    for offset in range(0, len(order) + 20, 11):  # 8 pages: under the 10 a second
        resp = http.get("/contacts", params={"limit": 11, "offset": offset, "sort": sort})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["count"] == len(order)
        seen += [c["id"] for c in body["contacts"]]
    assert seen == (order if sort == "asc" else order[::-1])
