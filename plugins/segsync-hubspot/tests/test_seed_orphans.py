"""Seeds on the HubSpot sandbox: orphan deals served as HubSpot serves them, bad seeds refused whole."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segsync import Rejection
from segsync.sandbox import SeedData, SeedError, load_seed_dir
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

from .conftest import TOKEN, contact, deal

CONTACTS = "id,email,firstname,lastname,country,city,age,jobtitle,company_size,createdate\n"
PURCHASES = "deal_id,contact_id,amount,currency,closedate,stage\n"


def seed_folder(tmp_path: Path) -> Path:
    """Deal 902's contact was deleted from the CRM before the export: an orphan."""
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "contacts.csv").write_text(CONTACTS + "11,ada@example.com,Ada,L,GB,London,36,,,2024-01-01\n")
    (folder / "purchases.csv").write_text(
        PURCHASES + "901,11,120.50,USD,2025-12-01T12:00:00Z,won\n902,884,80.00,USD,2025-12-02T12:00:00Z,won\n"
    )
    return folder


def get(sb_url: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sb_url + path, data=data, method="POST" if data else "GET")  # noqa: S310
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
        return resp.status, json.loads(resp.read())


def test_an_orphan_deal_is_served_with_no_contact_association(
    tmp_path: Path,
    make_sandbox: Callable[..., HubSpotSandbox],
    make_platform: Callable[..., HubSpotPlatform],
) -> None:
    with pytest.raises(SeedError, match=r"purchases\.csv:3: contact_id '884' is not in contacts\.csv"):
        load_seed_dir(seed_folder(tmp_path))
    data = load_seed_dir(tmp_path / "seed", keep_orphans=True, rules=HubSpotSandbox.seed_rules)
    sb = make_sandbox(data, log=False)
    _, page = get(sb.base_url, "/crm/v3/objects/deals?associations=contacts&limit=10")
    deals = {d["id"]: d for d in page["results"]}
    assert "associations" not in deals["902"], "HubSpot leaves out the associations of a deal that has none"
    assert deals["901"]["associations"]["contacts"]["results"] == [{"id": "11", "type": "deal_to_contact"}]
    status, batch = get(
        sb.base_url, "/crm/v4/associations/deals/contacts/batch/read", {"inputs": [{"id": "902"}]}
    )
    assert (status, batch["results"]) == (207, [])
    assert batch["errors"][0]["errors"] == [
        {"message": "No contacts are associated with deal 902.", "code": "NO_ASSOCIATIONS_FOUND"}
    ]
    platform = make_platform(sb, home_currency="USD")
    pulled = {
        (r.record_id, r.reason) if isinstance(r, Rejection) else (r.id, "ok")
        for r in platform.iter_purchases(None)
    }
    assert pulled == {("901", "ok"), ("902", "won deal has no associated contact")}


def test_a_bad_seed_loads_nothing_and_names_every_row(make_sandbox: Callable[..., HubSpotSandbox]) -> None:
    sb = make_sandbox(SeedData([contact("100")], []), log=False)
    bad = SeedData(
        [contact("101", email="C100@example.com"), contact("x2"), contact("103")],
        [deal("5001", "103"), deal("5001", "103"), deal("5002", "999")],
    )
    with pytest.raises(SeedError) as caught:
        sb.seed(bad)
    assert [str(p) for p in caught.value.problems] == [
        "contacts.csv:2: email is already on contact '100' in the sandbox: a CRM keeps one contact per "
        "email, merge the rows or clear one email",
        "contacts.csv:3: id 'x2' is not a number (HubSpot contact ids are integers)",
        "purchases.csv:3: deal_id '5001' appears twice (first on line 2)",
        "purchases.csv:4: contact_id '999' is not in contacts.csv",
    ]
    assert set(sb.account.contacts) == {"100"}
    assert sb.account.deals == {}


def test_the_sandbox_command_keeps_orphans_when_asked(
    tmp_path: Path, make_platform: Callable[..., HubSpotPlatform]
) -> None:
    """The real command in a child process, stopped by its pid."""
    command = [
        "sandbox",
        "hubspot",
        "--token",
        TOKEN,
        "--seed-from",
        str(seed_folder(tmp_path)),
        "--keep-orphans",
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
        assert "listening on http://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
        platform = make_platform(base_url=line.rsplit(" ", 1)[1].strip(), home_currency="USD")
        rejected = [r for r in platform.iter_purchases(None) if isinstance(r, Rejection)]
        assert [(r.record_id, r.reason) for r in rejected] == [("902", "won deal has no associated contact")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
