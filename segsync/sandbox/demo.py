"""The demo store every sandbox can be seeded with: ``segsync demo``, ``--seed demo``, the tests.

Deterministic for (as_of, contacts, seed): customer behaviour follows a few archetypes so every
RFM segment is populated, and a handful of records are broken the way real CRM data is.
"""

from __future__ import annotations

import datetime as dt
import random

from segsync.sandbox.seed import SeedContact, SeedData, SeedPurchase

_FIRST = [
    "Ada", "Alan", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Margaret", "Dennis", "Frances",
    "Guido", "Radia", "Tim", "Katherine", "Donald"
]  # fmt: skip
_LAST = [
    "Lovelace", "Turing", "Hopper", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Hamilton",
    "Ritchie", "Allen", "Rossum", "Perlman", "Lee"
]  # fmt: skip
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


def _demo_contact(rng: random.Random, i: int, as_of: dt.date) -> SeedContact:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    country, city = rng.choice(_PLACES)
    created = as_of - dt.timedelta(days=rng.randint(30, 1500))
    email = f"{first.lower()}.{last.lower()}.{i}@example.com"
    if i % 97 == 13:
        email = f"{first.lower()}+shop{i}@example.com"  # '+' addresses are common and break naive URLs
    return SeedContact(
        id=str(1000 + i),
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


def _demo_habit(rng: random.Random) -> tuple[int, int, int, int] | None:
    """(purchases, span in days, days since the last, basket) of one customer archetype; None: a
    prospect who never bought."""
    archetype = rng.random()
    if archetype < 0.18:
        return None
    if archetype < 0.33:  # loyal regular
        return rng.randint(6, 20), 720, rng.randint(0, 40), 90
    if archetype < 0.48:  # recent first-timer or second-timer
        return rng.randint(1, 2), 60, rng.randint(0, 45), 60
    if archetype < 0.63:  # lapsed big spender
        return rng.randint(3, 12), 900, rng.randint(200, 600), 180
    if archetype < 0.83:  # one-off long ago
        return 1, 1, rng.randint(120, 900), 45
    return rng.randint(2, 6), 500, rng.randint(30, 200), 70  # steady mid-frequency


def _demo_deals(rng: random.Random, cid: str, as_of: dt.date, deal_no: int) -> list[SeedPurchase]:
    """One customer's deals, numbered after ``deal_no``: won ones by habit, sometimes a lost or open one."""
    habit = _demo_habit(rng)
    if habit is None:
        return []
    n, span, last_gap, basket = habit
    deals: list[SeedPurchase] = []
    last_date = as_of - dt.timedelta(days=last_gap)
    for k in range(n):
        when = last_date - dt.timedelta(days=0 if k == 0 else rng.randint(1, span))
        amount = round(rng.lognormvariate(0, 0.5) * basket, 2)
        deal_id = str(deal_no + len(deals) + 1)
        deals.append(
            SeedPurchase(deal_id, cid, f"{amount:.2f}", "USD", when.isoformat() + "T12:00:00Z", "won")
        )
    if rng.random() < 0.15:
        deal_id = str(deal_no + len(deals) + 1)
        amount_text = f"{rng.randint(50, 900)}.00"
        deals.append(SeedPurchase(deal_id, cid, amount_text, "USD", "", rng.choice(["lost", "open"])))
    return deals


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
        people.append(_demo_contact(rng, i, as_of))
        mine = _demo_deals(rng, people[-1].id, as_of, deal_no)
        deals += mine
        deal_no += len(mine)
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
