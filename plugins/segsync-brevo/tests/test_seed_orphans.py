"""Seeds on the Brevo sandbox: orphan deals served as Brevo serves them, bad seeds refused whole."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from segsync import Rejection
from segsync.sandbox import SeedData, SeedError, load_seed_dir
from segsync.sandbox.seed import SeedContact, SeedPurchase
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import KEY, connect, start_sandbox

CONTACTS = "id,email,firstname,lastname,country,city,age,jobtitle,company_size,createdate\n"
PURCHASES = "deal_id,contact_id,amount,currency,closedate,stage\n"


def person(cid: str, email: str) -> SeedContact:
    return SeedContact(cid, email, "A", "B", "", "", "", "", "", "2024-01-01")


def test_an_orphan_deal_has_no_linked_contact(tmp_path: Path, clock) -> None:
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "contacts.csv").write_text(CONTACTS + "11,ada@example.com,Ada,L,GB,London,36,,,2024-01-01\n")
    (folder / "purchases.csv").write_text(
        PURCHASES + "d1,11,120.50,USD,2025-12-01T12:00:00Z,won\nd2,884,80.00,USD,2025-12-02T12:00:00Z,won\n"
    )
    with pytest.raises(SeedError, match=r"purchases\.csv:3: contact_id '884' is not in contacts\.csv"):
        load_seed_dir(folder, rules=BrevoSandbox.seed_rules)
    sandbox = start_sandbox(
        clock, load_seed_dir(folder, keep_orphans=True, rules=BrevoSandbox.seed_rules), None
    )
    try:
        with httpx.Client(base_url=sandbox.base_url, headers={"api-key": KEY}, timeout=5) as http:
            items = {d["id"]: d for d in http.get("/crm/deals", params={"limit": 50}).json()["items"]}
        assert (items["d2"]["linkedContactsIds"], items["d2"]["attributes"]["number_of_contacts"]) == ([], 0)
        assert (items["d1"]["linkedContactsIds"], items["d1"]["attributes"]["number_of_contacts"]) == (
            [11],
            1,
        )
        assert sandbox.orders["d2"].contact_id is None
        platform = connect(sandbox, clock)
        pulled = {
            (r.record_id, r.reason) if isinstance(r, Rejection) else (r.id, "ok")
            for r in platform.iter_purchases(None)
        }
        assert pulled == {("d1", "ok"), ("d2", "won deal is linked to no contact")}
    finally:
        sandbox.stop()


def test_a_bad_seed_loads_nothing_and_names_every_row(clock) -> None:
    sandbox = BrevoSandbox(secret=KEY, clock=clock)
    sandbox.seed(SeedData([person("1", "a@example.com")], []))
    bad = SeedData(
        [person("2", "b@example.com"), person("3", "B@Example.com"), person("4", "A@example.com")],
        [SeedPurchase("d1", "9", "5", "USD", "", "won")],
    )
    with pytest.raises(SeedError) as caught:
        sandbox.seed(bad)
    assert [str(p) for p in caught.value.problems] == [
        "contacts.csv:3: email is already on line 2 (id '2'): a CRM keeps one contact per email, merge the "
        "rows or clear one email",
        "contacts.csv:4: email is already on contact '1' in the sandbox: a CRM keeps one contact per email, "
        "merge the rows or clear one email",
        "purchases.csv:2: contact_id '9' is not in contacts.csv",
    ]
    assert set(sandbox.contacts) == {1}
    assert sandbox.deals == {}
