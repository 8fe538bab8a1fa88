"""``--seed-from DIR``: a user's own CRM export, checked the way a CRM would, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from segsync.cli import main
from segsync.errors import ConfigError
from segsync.sandbox import SeedData, SeedError, SeedRules, check_seed, load_seed_dir
from segsync.sandbox.seed import MAX_LISTED, SeedContact, SeedPurchase

CONTACTS = "id,email,firstname,lastname,country,city,age,jobtitle,company_size,createdate\n"
PURCHASES = "deal_id,contact_id,amount,currency,closedate,stage\n"
ADA = "11,ada@example.com,Ada,Lovelace,GB,London,36,,,2024-01-01\n"
BOB = "12,bob@example.com,Bob,B,FR,Paris,,,,2024-02-01\n"
WON = "901,11,120.50,USD,2025-12-01T12:00:00Z,won\n"


def folder_with(tmp_path: Path, contacts: bytes | str, purchases: bytes | str) -> Path:
    folder = tmp_path / "seed"
    folder.mkdir(exist_ok=True)
    for name, content in (("contacts.csv", contacts), ("purchases.csv", purchases)):
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def problems(folder: Path, **kw: object) -> list[str]:
    with pytest.raises(SeedError) as caught:
        load_seed_dir(folder, **kw)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_every_problem_is_reported_with_file_and_line_in_one_message(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        CONTACTS + ADA + BOB + BOB.replace("bob@", "robert@") + "13,ADA@Example.com,A,L,,,,,,\n",
        PURCHASES + WON + "902,884,80,USD,2025-12-02,won\n" + "903,11,5,USD,,Closed Won\n" + WON,
    )
    with pytest.raises(SeedError) as caught:
        load_seed_dir(folder)
    assert [str(p) for p in caught.value.problems] == [
        "contacts.csv:4: id '12' appears twice (first on line 3)",
        "contacts.csv:5: email is already on line 2 (id '11'): a CRM keeps one contact per email, "
        "merge the rows or clear one email",
        "purchases.csv:3: contact_id '884' is not in contacts.csv",
        "purchases.csv:4: stage 'Closed Won' is not one of won, lost, open",
        "purchases.csv:5: deal_id '901' appears twice (first on line 2)",
    ]
    message = str(caught.value)
    assert message.startswith(f"seed folder {folder}: 5 problems, nothing was loaded: contacts.csv:4: ")
    assert "\n" not in message
    assert "--keep-orphans keeps deals whose contact_id is not in contacts.csv, with no contact" in message
    assert "ada@example.com" not in message.casefold(), "addresses stay out of error output"
    assert isinstance(caught.value, ConfigError)


def test_bytes_that_are_not_utf8_name_their_lines_and_a_bom_is_fine(tmp_path: Path) -> None:
    latin1 = (CONTACTS + ADA + "12,r@example.com,René,Noël,FR,Paris,,,,\n" + BOB.replace("12", "14")).encode(
        "latin-1"
    )
    latin1 += "15,z@example.com,Zoë,Z,,,,,,\n".encode("latin-1")
    folder = folder_with(tmp_path, latin1, PURCHASES + WON)
    assert problems(folder) == [
        "contacts.csv:3: not UTF-8 (byte 0xe9 at position 21, also on line(s) 5): save the file as UTF-8 "
        "(in Excel: CSV UTF-8)"
    ]
    folder = folder_with(
        tmp_path, b"\xef\xbb\xbf" + (CONTACTS + ADA).encode(), b"\xef\xbb\xbf" + (PURCHASES + WON).encode()
    )
    data = load_seed_dir(folder)
    assert [c.id for c in data.contacts] == ["11"], "a UTF-8 BOM is not part of the first column's name"
    folder = folder_with(tmp_path, (CONTACTS + ADA).encode("utf-16"), PURCHASES)
    assert problems(folder) == ["contacts.csv: the file is UTF-16, save it as UTF-8"]


def test_undecodable_lines_do_not_hide_the_other_problems(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        (CONTACTS + "11,a@example.com,Ren\xe9,,,,,,,\n").encode("latin-1"),
        PURCHASES + "1,2,3,USD,,won\n",
    )
    found = problems(folder)
    assert found[0].startswith("contacts.csv:2: not UTF-8")
    assert found[1] == "purchases.csv:2: contact_id '2' is not in contacts.csv"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "id,email,firstname,lastname,country,city,age,jobtitle,createdate",
            ["contacts.csv:1: missing column(s) company_size"],
        ),
        (
            "id,E-mail,firstname,lastname,country,city,age,jobtitle,company_size,createdate,notes",
            [
                "contacts.csv:1: column 'E-mail' should be 'email'",
                "contacts.csv:1: unknown column(s) 'notes'",
            ],
        ),
        (
            "id,email,firstname,lastname,country,city,age,job title,company_size,createdate,email",
            [
                "contacts.csv:1: column 'job title' should be 'jobtitle'",
                "contacts.csv:1: column(s) email appear twice",
            ],
        ),
        (
            "id;email;firstname;lastname;country;city;age;jobtitle;company_size;createdate",
            ["contacts.csv:1: the values are separated by ';' or tabs, segsync reads comma-separated CSV"],
        ),
        ("", ["contacts.csv:1: the file is empty"]),
    ],
)
def test_header_problems_say_which_columns_and_list_the_expected_ones(
    tmp_path: Path, header: str, expected: list[str]
) -> None:
    folder = folder_with(tmp_path, header + "\n" if header else "", PURCHASES)
    found = problems(folder)
    expected_columns = (
        "id, email, firstname, lastname, country, city, age, jobtitle, company_size, createdate"
    )
    assert found == [
        *expected[:-1],
        f"{expected[-1]} (the header must name {expected_columns}, in any order)",
    ]


def test_columns_may_come_in_any_order(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        "email,id,firstname,lastname,country,city,age,jobtitle,company_size,createdate\n"
        "ada@example.com,11,Ada,L,GB,London,36,,,2024-01-01\n",
        "stage,deal_id,contact_id,amount,currency,closedate\nwon,901,11,5,USD,2025-01-01\n",
    )
    data = load_seed_dir(folder)
    assert (data.contacts[0].id, data.contacts[0].email) == ("11", "ada@example.com")
    assert (data.purchases[0].deal_id, data.purchases[0].stage) == ("901", "won")


def test_wrong_column_counts_and_multi_line_cells_keep_line_numbers_true(tmp_path: Path) -> None:
    contacts = (
        CONTACTS
        + '11,ada@example.com,Ada,"Love\nlace",GB,London,36,,,2024-01-01\n'  # lines 2-3, one row
        + "12,bob@example.com,Bob\n"  # line 4
        + "\n"  # a blank line is skipped
        + ",,,,,,,,,\n"  # and so is a spreadsheet's row of empty cells
        + "13,c@example.com,C,D,FR,Paris,,,,\n"  # line 7
    )
    purchases = PURCHASES + "901,11,1,200.00,USD,2025-01-01,won\n" + "902,11,5,USD,2025-01-01,won\n"
    found = problems(folder_with(tmp_path, contacts, purchases))
    assert found == [
        "contacts.csv:4: 3 values, the header has 10 columns",
        "purchases.csv:2: 7 values, the header has 6 columns, quote values that contain commas",
    ]
    fixed = contacts.replace("12,bob@example.com,Bob\n", BOB)
    data = load_seed_dir(folder_with(tmp_path, fixed, PURCHASES + '901,11,"1,200.00",USD,2025-01-01,won\n'))
    assert [(c.id, c.line) for c in data.contacts] == [("11", 2), ("12", 4), ("13", 7)]
    assert data.contacts[0].lastname == "Love\nlace"
    assert data.purchases[0].amount == "1,200.00"


def test_empty_ids_and_a_missing_file_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "purchases.csv").write_text(PURCHASES + ",11,5,USD,,won\n", encoding="utf-8")
    assert problems(folder) == [
        "contacts.csv: file not found (--seed-from needs contacts.csv and purchases.csv)",
        "purchases.csv:2: empty deal_id, every row needs one",
    ], "a deal's contact is not checked against a file that could not be read"
    with pytest.raises(ConfigError, match="no such folder"):
        load_seed_dir(tmp_path / "nowhere")


def test_orphan_deals_are_kept_unassociated_when_asked(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CONTACTS + ADA, PURCHASES + WON + "902,884,80,USD,2025-12-02,won\n")
    assert problems(folder) == ["purchases.csv:3: contact_id '884' is not in contacts.csv"]
    data = load_seed_dir(folder, keep_orphans=True)
    assert [(p.deal_id, p.contact_id) for p in data.purchases] == [("901", "11"), ("902", "")]
    other = folder_with(tmp_path, CONTACTS + ADA, PURCHASES + "902,884,80,USD,2025-12-02,maybe\n")
    assert problems(other, keep_orphans=True) == [
        "purchases.csv:2: stage 'maybe' is not one of won, lost, open"
    ]


def test_values_a_crm_stores_as_strings_are_loaded_raw(tmp_path: Path) -> None:
    """The loader refuses what a CRM refuses, not what segsync must reject per record itself."""
    folder = folder_with(
        tmp_path,
        CONTACTS + "11,,Ada,,,,forty,,,yesterday\n" + "12,not an address,B,,,,,,,\n",
        PURCHASES + "901,11,call me,EUR,someday,won\n" + "902,11,,,,lost\n" + "903,,-5,USD,2025-01-01,open\n",
    )
    data = load_seed_dir(folder)
    assert (data.contacts[0].email, data.contacts[0].age, data.contacts[0].createdate) == (
        "",
        "forty",
        "yesterday",
    )
    assert data.contacts[1].email == "not an address"
    assert [(p.amount, p.closedate) for p in data.purchases] == [
        ("call me", "someday"),
        ("", ""),
        ("-5", "2025-01-01"),
    ]


def test_the_listing_is_capped_and_every_problem_kept(tmp_path: Path) -> None:
    rows = "".join(f"{900 + i},11,5,USD,,Won\n" for i in range(25))
    with pytest.raises(SeedError) as caught:
        load_seed_dir(folder_with(tmp_path, CONTACTS + ADA, PURCHASES + rows))
    assert len(caught.value.problems) == 25
    message = str(caught.value)
    assert message.count("is not one of won, lost, open") == MAX_LISTED
    assert message.endswith(
        f"purchases.csv:{MAX_LISTED + 1}: stage 'Won' is not one of won, lost, open; and 15 more"
    )


def test_platform_rules_and_the_account_are_checked_too(tmp_path: Path) -> None:
    rules = SeedRules("HubSpot", integer_contact_ids=True, integer_deal_ids=True)
    folder = folder_with(tmp_path, CONTACTS + ADA.replace("11,", "c11,"), PURCHASES + "d1,c11,5,USD,,won\n")
    assert problems(folder, rules=rules) == [
        "contacts.csv:2: id 'c11' is not a number (HubSpot contact ids are integers)",
        "purchases.csv:2: deal_id 'd1' is not a number (HubSpot deal ids are integers)",
    ]
    data = SeedData(
        [
            SeedContact("11", "Ada@Example.com", "", "", "", "", "", "", "", ""),
            SeedContact("12", "", *[""] * 8),
        ],
        [SeedPurchase("901", "7", "5", "USD", "", "won"), SeedPurchase("902", "99", "5", "USD", "", "won")],
    )
    with pytest.raises(SeedError) as caught:
        check_seed(
            data, known_contacts={"7", "12"}, known_deals={"901"}, known_emails={"ada@example.com": "7"}
        )
    assert str(caught.value) == (
        "seed data: 4 problems, nothing was loaded: "
        "contacts.csv:2: email is already on contact '7' in the sandbox: a CRM keeps one contact per email, "
        "merge the rows or clear one email; "
        "contacts.csv:3: id '12' appears twice (already in the sandbox); "
        "purchases.csv:2: deal_id '901' appears twice (already in the sandbox); "
        "purchases.csv:3: contact_id '99' is not in contacts.csv; "
        "--keep-orphans keeps deals whose contact_id is not in contacts.csv, with no contact "
        "(as a CRM keeps a deal whose contact was deleted)"
    )
    assert isinstance(caught.value, ValueError), "sandboxes refuse bad SeedData from Python with it"


def test_the_cli_prints_every_problem_on_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contacts = (CONTACTS + ADA + BOB + BOB).encode() + b"13,c@example.com,Ren\xe9,,,,,,,\n"
    folder = folder_with(tmp_path, contacts, PURCHASES + WON + "902,884,80,USD,2025-12-02,won\n")
    for platform in ("hubspot", "brevo"):
        assert main(["sandbox", platform, "--token", "t", "--seed-from", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"segsync: error: seed folder {folder}: 4 problems, nothing was loaded: ")
        assert "contacts.csv:4: id '12' appears twice (first on line 3)" in err
        assert "contacts.csv:4: email is already on line 3 (id '12')" in err
        assert "contacts.csv:5: not UTF-8" in err
        assert "purchases.csv:3: contact_id '884' is not in contacts.csv" in err
        assert "--keep-orphans" in err
        assert "Traceback" not in err


def test_keep_orphans_needs_seed_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "hubspot", "--token", "t", "--keep-orphans"]) == 2
    assert "--keep-orphans applies to --seed-from DIR only" in capsys.readouterr().err
