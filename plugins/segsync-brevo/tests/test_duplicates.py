"""One contact per email: the sandbox refuses what Brevo refuses, and segsync's write count stays true.

Brevo answers a create, or an ``EMAIL`` change, to an address another contact has with 400
``duplicate_parameter`` (crm-api-facts §2.2 and pitfall 11). Imports find contacts by email,
so an import row whose email is not where segsync's pull saw it writes some other contact:
the count of contacts written must still equal the contacts whose values Brevo holds, read
back over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync import Contact, ContactUpdate, FieldSpec
from segsync.testing import StateFile
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import AS_OF, KEY, connect

SCORE = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
REVENUE = FieldSpec(key="segsync_revenue", label="Revenue", type="number")
DUPLICATE = {
    "code": "duplicate_parameter",
    "metadata": {"duplicate_identifiers": ["email"]},
}


def client(sandbox: BrevoSandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url, headers={"api-key": KEY}, timeout=5)


@pytest.fixture
def http(quiet_sandbox: BrevoSandbox) -> Iterator[httpx.Client]:
    with client(quiet_sandbox) as c:
        yield c


def refused(resp: httpx.Response, action: str) -> None:
    assert resp.status_code == 400, resp.text
    message = f"Unable to {action} contact, email is already associated with another Contact"
    assert resp.json() == {**DUPLICATE, "message": message}


def read_back(platform: BrevoPlatform, specs) -> dict[str, Contact]:
    """Every contact as Brevo holds it now, through brevo-python over HTTP."""
    return {c.id: c for c in platform.iter_contacts(["email"], specs, {}) if isinstance(c, Contact)}


# -- the sandbox refuses what Brevo refuses --------------------------------------------------------


def test_a_create_with_a_taken_email_is_refused(http, quiet_sandbox):
    taken = quiet_sandbox.contacts[1000].email
    assert taken
    before = len(quiet_sandbox.contacts)
    refused(http.post("/contacts", json={"email": taken.upper(), "attributes": {"CITY": "Oslo"}}), "create")
    assert len(quiet_sandbox.contacts) == before
    assert quiet_sandbox.contact("1000")["attributes"]["CITY"] != "Oslo"
    updated = http.post(
        "/contacts", json={"email": taken, "attributes": {"CITY": "Oslo"}, "updateEnabled": True}
    )
    assert updated.status_code == 204
    assert quiet_sandbox.contact("1000")["attributes"]["CITY"] == "Oslo"
    created = http.post("/contacts", json={"email": "new@example.com", "listIds": []})
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert http.get("/contacts/NEW@example.com").json()["id"] == new_id
    assert http.post("/contacts", json={"email": "not an address"}).json()["code"] == "invalid_parameter"
    with pytest.raises(ValueError, match="one contact per email"):
        quiet_sandbox.add_contact(taken.title())


def test_an_email_change_to_a_taken_address_is_refused_and_changes_nothing(http, quiet_sandbox):
    mine, theirs = quiet_sandbox.contacts[1001].email, quiet_sandbox.contacts[1000].email
    assert mine
    assert theirs
    body = {"attributes": {"EMAIL": theirs.upper(), "CITY": "Oslo"}}
    refused(http.put("/contacts/1001", json=body), "update")
    after = quiet_sandbox.contact("1001")
    assert (after["email"], after["attributes"]["CITY"]) != (theirs, "Oslo"), (
        "nothing of the refused body applied"
    )
    assert http.put("/contacts/1001", json={"attributes": {"EMAIL": mine}}).status_code == 204, (
        "its own email"
    )
    assert http.put("/contacts/1001", json={"attributes": {"EMAIL": "moved@example.com"}}).status_code == 204
    assert http.get("/contacts/moved@example.com").json()["id"] == 1001
    assert http.get(f"/contacts/{mine}").status_code == 404
    assert http.put("/contacts/1000", json={"attributes": {"EMAIL": mine}}).status_code == 204, (
        "a freed address"
    )
    assert http.get(f"/contacts/{mine}").json()["id"] == 1000


def test_an_import_applies_one_row_per_email_and_reports_the_others(http, quiet_sandbox):
    folder = http.post("/contacts/folders", json={"name": "segsync"}).json()["id"]
    lst = http.post("/contacts/lists", json={"name": "L", "folderId": folder}).json()["id"]
    email = quiet_sandbox.contacts[1000].email
    assert email
    rows = [
        {"email": email, "attributes": {"CITY": "Lyon"}},
        {"email": email.upper(), "attributes": {"CITY": "Nice"}},
        {"email": "fresh@example.com", "attributes": {"CITY": "Metz"}},
    ]
    pid = http.post(
        "/contacts/import", json={"jsonBody": rows, "listIds": [lst], "updateExistingContacts": True}
    ).json()["processId"]
    for _ in range(3):
        done = http.get(f"/processes/{pid}").json()
    assert done["status"] == "completed"
    assert done["info"]["import"]["duplicate_email_id"].endswith(".csv")
    assert done["info"]["import"]["invalid_emails"] is None
    assert quiet_sandbox.contact("1000")["attributes"]["CITY"] == "Lyon"
    assert [c.email for c in quiet_sandbox.contacts.values()].count("fresh@example.com") == 1


# -- segsync counts only what Brevo stored ----------------------------------------------------------


def test_updates_sharing_an_email_are_each_written_by_id(sandbox, clock):
    """Two of segsync's contacts with one email (one copy is out of date): an import would reach
    one of them only; each must get its own values, and the count must say what Brevo holds."""
    platform = connect(sandbox, clock, put_max=5)
    contacts = [c for c in read_back(platform, []).values() if c.email][:20]
    platform.create_fields([SCORE, REVENUE])
    updates = [
        ContactUpdate(
            contact_id=c.id,
            email=contacts[i % 10].email,  # the second ten carry the first ten's emails
            values={SCORE.key: f"s{i}", REVENUE.key: Decimal(i)},
        )
        for i, c in enumerate(contacts)
    ]
    result = platform.write_fields(updates)
    got = read_back(connect(sandbox, clock), [SCORE, REVENUE])
    stored = {u.contact_id for u in updates if dict(got[u.contact_id].managed) == dict(u.values)}
    assert set(result.ok) == stored
    assert len(result.ok) == 20, "every contact reached, by id"
    assert platform.runner.stats.per_operation["contacts.import"] == 0


def test_a_sync_counts_only_contacts_whose_values_brevo_holds(sandbox, clock, seed_data, tmp_path: Path):
    """Between segsync's pull and its write, a user gives contact A's email to contact B (A got a
    new one first). The import row for A then writes B, and B's row creates a stranger: neither
    A nor B holds its values, and the sync must not count them."""
    buyers = {p.contact_id for p in seed_data.purchases if p.stage == "won"}
    a, b = [c for c in seed_data.contacts if c.email and c.id in buyers][:2]
    platform = connect(sandbox, clock, put_max=5)
    write = platform.write_fields

    def emails_move_then_write(updates):
        with client(sandbox) as http:
            for cid, email in ((a.id, "a.moved@example.com"), (b.id, a.email)):
                assert http.put(f"/contacts/{cid}", json={"attributes": {"EMAIL": email}}).status_code == 204
        platform.write_fields = write  # once
        return write(updates)

    platform.write_fields = emails_move_then_write
    state = StateFile(tmp_path / "state.db", clock=clock)
    result = sync(platform, state)
    assert result.desired is not None
    specs = result.desired.fields
    got = read_back(connect(sandbox, clock), specs)
    wanted = {cid: v for cid, v in result.desired.values.items() if any(x is not None for x in v.values())}
    holding = {cid for cid, v in wanted.items() if dict(got[cid].managed) == dict(v)}
    assert {a.id, b.id}.isdisjoint(holding)
    assert result.report.contacts_written == len(holding)
    assert result.report.failed_records == len(wanted) - len(holding) == 2
    # The next sync pulls the emails as they are now and writes both, by the same imports.
    again = sync(platform, state)
    got = read_back(connect(sandbox, clock), specs)
    assert again.report.contacts_written >= 2
    assert again.desired is not None
    assert all(dict(got[cid].managed) == dict(again.desired.values[cid]) for cid in wanted)


def sync(platform: BrevoPlatform, state: StateFile) -> Any:
    return state.sync(platform, account="dup", as_of=AS_OF)
