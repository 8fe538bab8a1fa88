"""Seed data for sandboxes: the demo store, and the ``--seed-from DIR`` CSV format.

Both sandboxes load the same two files, so a user can try their own export on either:

``contacts.csv``  id, email, firstname, lastname, country, city, age, jobtitle, company_size, createdate
``purchases.csv`` deal_id, contact_id, amount, currency, closedate, stage

``stage`` is ``won``, ``lost`` or ``open``. Empty cells are kept empty: the sandboxes serve
them as the CRM would (a contact without an email, a deal without an amount), and segsync must
reject those records itself. The demo store deliberately contains a few such records.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from segsync.errors import ConfigError

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


@dataclass(frozen=True)
class SeedPurchase:
    deal_id: str
    contact_id: str  # empty: a deal nobody is associated with
    amount: str  # the CRM's string, possibly empty or not a number
    currency: str
    closedate: str  # ISO 8601, possibly empty
    stage: str


@dataclass(frozen=True)
class SeedData:
    contacts: list[SeedContact]
    purchases: list[SeedPurchase]


_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Ken",
    "Barbara",
    "Edsger",
    "Margaret",
    "Dennis",
    "Frances",
    "Guido",
    "Radia",
    "Tim",
    "Katherine",
    "Donald",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Thompson",
    "Liskov",
    "Dijkstra",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Rossum",
    "Perlman",
    "Lee",
]
_PLACES = [
    ("US", "New York"),
    ("US", "Austin"),
    ("GB", "London"),
    ("FR", "Paris"),
    ("DE", "Berlin"),
    ("ES", "Madrid"),
    ("NL", "Amsterdam"),
    ("CA", "Toronto"),
]
_JOBS = ["Marketing Manager", "Founder", "Engineer", "Designer", "Buyer", "Store Owner", "Analyst", ""]
_SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]


def demo_dataset(as_of: dt.date, contacts: int = 3000, seed: int = 7) -> SeedData:
    """A realistic store, deterministic for (as_of, contacts, seed).

    Customer behaviour follows a few archetypes (loyal regulars, recent first-timers, lapsed
    big spenders, one-off buyers, prospects who never bought), so every RFM segment is
    populated. A handful of records are broken the way real CRM data is.
    """
    rng = random.Random(seed)
    people: list[SeedContact] = []
    deals: list[SeedPurchase] = []
    deal_no = 1000
    for i in range(contacts):
        cid = str(1000 + i)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        country, city = rng.choice(_PLACES)
        created = as_of - dt.timedelta(days=rng.randint(30, 1500))
        email = f"{first.lower()}.{last.lower()}.{i}@example.com"
        if i % 97 == 13:
            email = f"{first.lower()}+shop{i}@example.com"  # '+' addresses are common and break naive URLs
        people.append(
            SeedContact(
                id=cid,
                email="" if i % 499 == 17 else email,
                firstname=first,
                lastname=last,
                country=country,
                city=city,
                age=str(rng.randint(18, 75)) if i % 11 else "",
                jobtitle=rng.choice(_JOBS),
                company_size=rng.choice(_SIZES),
                createdate=created.isoformat() + "T09:00:00Z",
            )
        )
        archetype = rng.random()
        if archetype < 0.18:
            continue  # prospect: never bought
        if archetype < 0.33:  # loyal regular
            n, span, last_gap, basket = rng.randint(6, 20), 720, rng.randint(0, 40), 90
        elif archetype < 0.48:  # recent first-timer or second-timer
            n, span, last_gap, basket = rng.randint(1, 2), 60, rng.randint(0, 45), 60
        elif archetype < 0.63:  # lapsed big spender
            n, span, last_gap, basket = rng.randint(3, 12), 900, rng.randint(200, 600), 180
        elif archetype < 0.83:  # one-off long ago
            n, span, last_gap, basket = 1, 1, rng.randint(120, 900), 45
        else:  # steady mid-frequency
            n, span, last_gap, basket = rng.randint(2, 6), 500, rng.randint(30, 200), 70
        last_date = as_of - dt.timedelta(days=last_gap)
        for k in range(n):
            when = last_date - dt.timedelta(days=0 if k == 0 else rng.randint(1, span))
            amount = round(rng.lognormvariate(0, 0.5) * basket, 2)
            deal_no += 1
            deals.append(
                SeedPurchase(
                    deal_id=str(deal_no),
                    contact_id=cid,
                    amount=f"{amount:.2f}",
                    currency="USD",
                    closedate=when.isoformat() + "T12:00:00Z",
                    stage="won",
                )
            )
        if rng.random() < 0.15:
            deal_no += 1
            deals.append(
                SeedPurchase(
                    str(deal_no), cid, f"{rng.randint(50, 900)}.00", "USD", "", rng.choice(["lost", "open"])
                )
            )
    # Broken records, the kinds real CRMs hold.
    extra = [
        ("", "199.00", "USD", "2"),  # deal without a contact
        (people[5].id, "", "USD", "3"),  # empty amount
        (people[6].id, "call me", "USD", "4"),  # non-numeric amount
        (people[7].id, "120.00", "EUR", "5"),  # another currency
        (people[8].id, "80.00", "USD", ""),  # no close date
    ]
    for contact_id, raw_amount, currency, day in extra:
        deal_no += 1
        closed = (as_of - dt.timedelta(days=int(day))).isoformat() + "T12:00:00Z" if day else ""
        deals.append(SeedPurchase(str(deal_no), contact_id, raw_amount, currency, closed, "won"))
    return SeedData(people, deals)


def load_seed_dir(folder: Path) -> SeedData:
    """Read ``contacts.csv`` and ``purchases.csv``; errors name the file and line."""
    contacts = list(_read(folder / "contacts.csv", CONTACT_COLUMNS, SeedContact))
    purchases = list(_read(folder / "purchases.csv", PURCHASE_COLUMNS, SeedPurchase))
    seen: set[str] = set()
    for c in contacts:
        if c.id in seen:
            raise ConfigError(
                f"{folder / 'contacts.csv'}: contact id {c.id!r} appears twice; ids must be unique"
            )
        seen.add(c.id)
    for p in purchases:
        if p.stage not in STAGES:
            where = folder / "purchases.csv"
            stages = ", ".join(STAGES)
            raise ConfigError(f"{where}: deal {p.deal_id!r} has stage {p.stage!r}; use one of {stages}")
    return SeedData(contacts, purchases)


def _read(path: Path, columns: tuple[str, ...], cls: type) -> Iterator:  # type: ignore[type-arg]
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; --seed-from needs contacts.csv and purchases.csv")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in columns if c not in header]
        if missing:
            raise ConfigError(
                f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
            )
        for lineno, row in enumerate(reader, start=2):
            if not row.get(columns[0]):
                raise ConfigError(f"{path}:{lineno}: empty {columns[0]}; every row needs one")
            yield cls(**{c: (row.get(c) or "").strip() for c in columns})


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
