"""Seed data for sandboxes: the ``--seed-from DIR`` CSV format (the demo store is in :mod:`.demo`).

Both sandboxes load the same two files, so a user can try their own export on either
(the full format is in docs/sandbox-seeds.md):

``contacts.csv``  id, email, firstname, lastname, country, city, age, jobtitle, company_size, createdate
``purchases.csv`` deal_id, contact_id, amount, currency, closedate, stage

The loader checks what a CRM itself would refuse or cannot hold: the encoding, the header, the
column counts, empty or duplicate ids, two contacts with one email, stages other than ``won``,
``lost`` or ``open``, and deals naming a contact the files do not have (``keep_orphans`` keeps
those unassociated, as a CRM keeps a deal whose contact was deleted). It reports every problem
with ``file:line`` at once, as one :class:`SeedError`.

Values a CRM stores as strings anyway are *not* checked: an empty email, an amount that is not
a number, a date nobody can read. The sandboxes serve them raw, as the CRM would, and segsync
must reject those records itself, one by one. The demo store deliberately contains a few.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from segsync.errors import ConfigError

CONTACTS_FILE = "contacts.csv"
PURCHASES_FILE = "purchases.csv"
CONTACT_COLUMNS = (
    "id",
    "email",
    "firstname",
    "lastname",
    "country",
    "city",
    "age",
    "jobtitle",
    "company_size",
    "createdate",
)
PURCHASE_COLUMNS = ("deal_id", "contact_id", "amount", "currency", "closedate", "stage")
STAGES = ("won", "lost", "open")
#: Problems listed in a SeedError's message; the rest are counted (all are in ``.problems``).
MAX_LISTED = 10
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SeedContact:
    id: str
    email: str
    firstname: str
    lastname: str
    country: str
    city: str
    age: str
    jobtitle: str
    company_size: str
    createdate: str  # ISO 8601 date or datetime
    line: int = field(default=0, compare=False)  # where the row starts in contacts.csv; 0: not from a file


@dataclass(frozen=True)
class SeedPurchase:
    deal_id: str
    contact_id: str  # empty: a deal nobody is associated with
    amount: str  # the CRM's string, possibly empty or not a number
    currency: str
    closedate: str  # ISO 8601, possibly empty
    stage: str
    line: int = field(default=0, compare=False)  # where the row starts in purchases.csv


@dataclass(frozen=True)
class SeedData:
    contacts: list[SeedContact]
    purchases: list[SeedPurchase]


@dataclass(frozen=True)
class SeedRules:
    """What a platform's sandbox requires of seed ids beyond the format (``Sandbox.seed_rules``)."""

    platform: str  # named in messages: "HubSpot deal ids are integers"
    integer_contact_ids: bool = False
    integer_deal_ids: bool = False


@dataclass(frozen=True)
class SeedProblem:
    file: str
    line: int  # 0: the whole file
    message: str
    orphan: bool = False  # a deal for a contact the seed does not have

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class SeedError(ConfigError, ValueError):
    """Seed data a sandbox cannot load; ``problems`` holds all of them, the message the first few.

    A ValueError too: sandboxes refuse bad :class:`SeedData` passed from Python with it.
    """

    def __init__(self, where: str, problems: Sequence[SeedProblem]) -> None:
        order = {CONTACTS_FILE: 0, PURCHASES_FILE: 1}
        self.problems = sorted(problems, key=lambda p: (order.get(p.file, 2), p.file, p.line))
        listed = "; ".join(str(p) for p in self.problems[:MAX_LISTED])
        if len(self.problems) > MAX_LISTED:
            listed += f"; and {len(self.problems) - MAX_LISTED} more"
        count = "1 problem" if len(self.problems) == 1 else f"{len(self.problems)} problems"
        if any(p.orphan for p in self.problems):
            listed += (
                f"; --keep-orphans keeps deals whose contact_id is not in {CONTACTS_FILE}, with no contact "
                "(as a CRM keeps a deal whose contact was deleted)"
            )
        super().__init__(f"{where}: {count}, nothing was loaded: {listed}")


def load_seed_dir(folder: Path, *, keep_orphans: bool = False, rules: SeedRules | None = None) -> SeedData:
    """Read ``contacts.csv`` and ``purchases.csv``; raise one :class:`SeedError` listing every problem.

    ``keep_orphans`` keeps deals whose ``contact_id`` is not in contacts.csv, with no contact (as a
    CRM serves a deal whose contact was deleted). ``rules`` adds the platform's id rules.
    """
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no such folder; --seed-from needs a folder with {CONTACTS_FILE} and {PURCHASES_FILE}"
        )
    problems: list[SeedProblem] = []
    contact_rows = _read_sheet(folder / CONTACTS_FILE, CONTACT_COLUMNS, problems)
    purchase_rows = _read_sheet(folder / PURCHASES_FILE, PURCHASE_COLUMNS, problems)
    data = SeedData(
        [SeedContact(**row, line=line) for line, row in contact_rows or ()],
        [SeedPurchase(**row, line=line) for line, row in purchase_rows or ()],
    )
    problems += _record_problems(data, rules, check_contact_ids=contact_rows is not None)
    if keep_orphans:
        orphans = {p.line for p in problems if p.orphan}
        problems = [p for p in problems if not p.orphan]
        data = SeedData(
            data.contacts,
            [dataclasses.replace(p, contact_id="") if p.line in orphans else p for p in data.purchases],
        )
    if problems:
        raise SeedError(f"seed folder {folder}", problems)
    return data


def check_seed(
    data: SeedData,
    rules: SeedRules | None = None,
    *,
    known_contacts: Collection[str] = (),
    known_deals: Collection[str] = (),
    known_emails: Mapping[str, str] | None = None,
) -> None:
    """What a sandbox's ``seed()`` runs before loading anything: the loader's checks, against
    the records the account already holds too (``known_emails``: casefolded email → contact id)."""
    problems = _record_problems(data, rules, known_contacts, known_deals, known_emails or {})
    if problems:
        raise SeedError("seed data", problems)


def _record_problems(
    data: SeedData,
    rules: SeedRules | None,
    known_contacts: Collection[str] = (),
    known_deals: Collection[str] = (),
    known_emails: Mapping[str, str] | None = None,
    *,
    check_contact_ids: bool = True,
) -> list[SeedProblem]:
    """Every problem with the records themselves; ``check_contact_ids`` False (contacts.csv could
    not be read) skips the check that every deal's contact exists."""
    problems: list[SeedProblem] = []
    contact_lines = _ids(
        CONTACTS_FILE,
        "id",
        [(_line(c.line, i), c.id) for i, c in enumerate(data.contacts)],
        known_contacts,
        rules.platform if rules and rules.integer_contact_ids else None,
        problems,
    )
    _ids(
        PURCHASES_FILE,
        "deal_id",
        [(_line(p.line, i), p.deal_id) for i, p in enumerate(data.purchases)],
        known_deals,
        rules.platform if rules and rules.integer_deal_ids else None,
        problems,
    )
    _emails(data.contacts, known_emails or {}, problems)
    stages = ", ".join(STAGES)
    for i, p in enumerate(data.purchases):
        line = _line(p.line, i)
        if p.stage not in STAGES:
            problems.append(SeedProblem(PURCHASES_FILE, line, f"stage {p.stage!r} is not one of {stages}"))
        known = p.contact_id in contact_lines or p.contact_id in known_contacts
        if check_contact_ids and p.contact_id and not known:
            message = f"contact_id {p.contact_id!r} is not in {CONTACTS_FILE}"
            problems.append(SeedProblem(PURCHASES_FILE, line, message, orphan=True))
    return problems


def _line(line: int, index: int) -> int:
    # Rows built in Python have no line: name the one write_seed_dir would give them.
    return line or index + 2


def _ids(
    file: str,
    column: str,
    ids: Sequence[tuple[int, str]],
    known: Collection[str],
    integers_for: str | None,
    problems: list[SeedProblem],
) -> dict[str, int]:
    """The line of each id; empty, duplicate and (for ``integers_for``) non-integer ids are problems."""
    first: dict[str, int] = {}
    what = "contact" if file == CONTACTS_FILE else "deal"
    for line, record_id in ids:
        found = []
        if not record_id:
            found.append(f"empty {column}, every row needs one")
        elif integers_for and not record_id.isdigit():
            found.append(f"{column} {record_id!r} is not a number ({integers_for} {what} ids are integers)")
        if record_id in first:
            found.append(f"{column} {record_id!r} appears twice (first on line {first[record_id]})")
        elif record_id in known:
            found.append(f"{column} {record_id!r} appears twice (already in the sandbox)")
        elif record_id:
            first[record_id] = line
        problems += [SeedProblem(file, line, f) for f in found]
    return first


def _emails(contacts: Sequence[SeedContact], known: Mapping[str, str], problems: list[SeedProblem]) -> None:
    """Two contacts with one email (case does not matter): neither CRM holds that. Messages name
    lines and ids, not the address (error output ends up in CI logs)."""
    first: dict[str, tuple[int, str]] = {}
    for i, c in enumerate(contacts):
        key = c.email.strip().casefold()
        if not key:
            continue
        line = _line(c.line, i)
        if key in first:
            other_line, other_id = first[key]
            where = f"line {other_line} (id {other_id!r})"
        elif key in known:
            where = f"contact {known[key]!r} in the sandbox"
        else:
            first[key] = (line, c.id)
            continue
        problems.append(
            SeedProblem(
                CONTACTS_FILE,
                line,
                f"email is already on {where}: a CRM keeps one contact per email, merge the rows or "
                "clear one email",
            )
        )


def _read_sheet(
    path: Path, columns: tuple[str, ...], problems: list[SeedProblem]
) -> list[tuple[int, dict[str, str]]] | None:
    """(line, row) for each row; None when the file or its header cannot be used at all."""
    name = path.name
    if not path.is_file():
        needs = f"--seed-from needs {CONTACTS_FILE} and {PURCHASES_FILE}"
        problems.append(SeedProblem(name, 0, f"file not found ({needs})"))
        return None
    text = _decode(name, path.read_bytes(), problems)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        problems.append(SeedProblem(name, 1, f"unreadable header ({exc})"))
        return None
    header_problems = _header_problems(name, header, columns)
    if header_problems:
        problems += header_problems
        return None
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        line = reader.line_num + 1  # where the next record starts: quoted cells may span lines
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            problems.append(SeedProblem(name, line, f"unreadable CSV ({exc}), check the quotes"))
            return rows
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a row of empty cells as spreadsheets export them
        if len(cells) != len(header):
            hint = ", quote values that contain commas" if len(cells) > len(header) else ""
            problems.append(
                SeedProblem(name, line, f"{len(cells)} values, the header has {len(header)} columns{hint}")
            )
            continue
        rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True)}))


def _decode(name: str, raw: bytes, problems: list[SeedProblem]) -> str | None:
    """The text, without a UTF-8 BOM; lines that are not UTF-8 are problems (and read with U+FFFD)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(SeedProblem(name, 0, "the file is UTF-16, save it as UTF-8"))
        return None
    raw = raw.removeprefix(_BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    bad: list[tuple[int, int, int]] = []  # line, byte column, byte
    for number, chunk in enumerate(raw.split(b"\n"), start=1):  # b"\n" never occurs inside a UTF-8 character
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append((number, exc.start + 1, chunk[exc.start]))
    line, column, byte = bad[0]
    also = ""
    if len(bad) > 1:
        others = ", ".join(str(b[0]) for b in bad[1:6])
        also = f", also on line(s) {others}" + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
    problems.append(
        SeedProblem(
            name,
            line,
            f"not UTF-8 (byte 0x{byte:02x} at position {column}{also}): save the file as UTF-8 "
            "(in Excel: CSV UTF-8)",
        )
    )
    return raw.decode("utf-8", errors="replace")


def _header_problems(name: str, header: list[str], columns: tuple[str, ...]) -> list[SeedProblem]:
    missing = [c for c in columns if c not in header]
    unknown = [h for h in dict.fromkeys(header) if h not in columns]
    twice = [h for h in dict.fromkeys(header) if header.count(h) > 1]
    found: list[str] = []
    if len(header) == 1 and re.search(r"[;\t]", header[0]):
        found.append("the values are separated by ';' or tabs, segsync reads comma-separated CSV")
        missing, unknown = [], []
    for h in list(unknown):
        match = _closest(h, missing)
        if match:
            found.append(f"column {h!r} should be {match!r}")
            unknown.remove(h)
            missing.remove(match)
    if missing:
        found.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        found.append(f"unknown column(s) {', '.join(repr(h) for h in unknown)}")
    if twice:
        found.append(f"column(s) {', '.join(twice)} appear twice")
    if not header:
        found = ["the file is empty"]
    if not found:
        return []
    found[-1] += f" (the header must name {', '.join(columns)}, in any order)"
    return [SeedProblem(name, 1, f) for f in found]


def _closest(given: str, candidates: Iterable[str]) -> str | None:
    """The column a misnamed header meant: same letters ignoring case and separators, or close."""
    options = list(candidates)
    squash = re.sub(r"[^a-z0-9]", "", given.lower())
    for c in options:
        if squash == c.replace("_", ""):
            return c
    close = difflib.get_close_matches(given.lower(), options, n=1, cutoff=0.75)
    return close[0] if close else None


def write_seed_dir(data: SeedData, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (
        ("contacts.csv", CONTACT_COLUMNS, data.contacts),
        ("purchases.csv", PURCHASE_COLUMNS, data.purchases),
    ):
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for r in rows:
                w.writerow([getattr(r, c) for c in columns])
