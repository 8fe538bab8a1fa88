"""How fast the pure core turns purchases into RFM scores and segments.

Run: .venv/bin/python benchmarks/bench_compute.py [--contacts N] [--purchases M]
Prints wall time and peak resident memory of summarise + score + classify (segsync.core.desired.compute)
over synthetic data, with the shipped rfm-standard and lifecycle packs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import time
from decimal import Decimal
from pathlib import Path

from segsync.core.desired import compute
from segsync.core.models import Contact, Purchase
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.config import ProjectConfig
from segsync.project.packs import load_packs

AS_OF = dt.date(2026, 11, 1)


def dataset(contacts: int, purchases: int, seed: int = 1) -> tuple[list[Contact], list[Purchase]]:
    rng = random.Random(seed)
    people = [
        Contact(
            id=str(i), email=f"c{i}@example.com", properties={"country": rng.choice(["US", "GB", "FR", "DE"])}
        )
        for i in range(contacts)
    ]
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    span = int((dt.datetime(2026, 10, 31, tzinfo=dt.UTC) - start).total_seconds())
    buys = [
        Purchase(
            id=f"d{n}",
            contact_id=str(int(contacts * rng.random() ** 2)),  # skewed: a few buy often
            amount=Decimal(rng.randint(500, 50_000)) / 100,
            currency="USD",
            closed_at=start + dt.timedelta(seconds=rng.randrange(span)),
        )
        for n in range(purchases)
    ]
    return people, buys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    args = parser.parse_args()
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    config = ProjectConfig(path=Path("segsync.toml"), segments={"packs": ["rfm-standard", "lifecycle"]})
    packs = load_packs(config, registry)
    t0 = time.perf_counter()
    contacts, purchases = dataset(args.contacts, args.purchases)
    t1 = time.perf_counter()
    print(f"generated {len(contacts):,} contacts and {len(purchases):,} purchases in {t1 - t0:.1f} s")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t2 = time.perf_counter()
    desired = compute(contacts, purchases, config=config, packs=packs, registry=registry, as_of=AS_OF)
    t3 = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"compute: {t3 - t2:.2f} s for {len(purchases):,} purchases "
        f"({len(purchases) / (t3 - t2):,.0f} purchases/s); peak RSS {after / 1024:,.0f} MiB "
        f"(+{(after - before) / 1024:,.0f} MiB during compute); "
        f"{desired.summary.customers:,} customers scored, {len(desired.rejections):,} rejections"
    )


if __name__ == "__main__":
    main()
