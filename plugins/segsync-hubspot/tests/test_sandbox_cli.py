"""``segsync sandbox hubspot --seed-from DIR``: users try their own CSV exports on the sandbox."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from segsync import Contact, Purchase, Rejection
from segsync.cli import main
from segsync.sandbox import SeedData, load_seed_dir
from segsync.sandbox.seed import write_seed_dir
from segsync_hubspot.platform import HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

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
    """The real command in a child process, stopped by its pid; its traffic joins the session log."""
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
