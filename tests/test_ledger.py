"""The purchase ledger in the state store: chunks, resolution, compaction, migration, columns.

Its meaning is the schema-2 purchase cache's: every purchase id a pull saves replaces all of
that id's rows, a retracted id drops them, a full pull starts over. A dictionary model of that
meaning is the oracle the property test holds every sequence of saves (and compactions) to.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segsync.core.models import Purchase
from segsync.core.record_checks import to_cents
from segsync.sync.state import SCHEMA_VERSION, StateStore
from segsync.sync.state import ledger as ledger_module

DAY = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)


def buy(
    pid: str, contact: str, amount: str = "10.00", days: int = 0, currency: str | None = "USD"
) -> Purchase:
    return Purchase(
        id=pid,
        contact_id=contact,
        amount=Decimal(amount),
        currency=currency,
        closed_at=DAY + dt.timedelta(days=days),
        modified_at=DAY + dt.timedelta(days=days, seconds=1),
    )


@pytest.fixture
def store(segsync_state_target):
    """A SQLite store, then a PostgreSQL one: every test below runs on both."""
    with StateStore(segsync_state_target) as s:
        yield s


def kept(store: StateStore) -> dict[tuple[str, str], Decimal]:
    return {(p.id, p.contact_id): p.amount for p in store.purchases("p", "a")}


def as_rows(store: StateStore) -> dict[tuple[str, str], tuple[int, int]]:
    """The columns scoring reads, back as {(purchase, contact): (cents, day)}."""
    rows = store.ledger_rows("p", "a")
    return {
        (rows.label(i), rows.contact_ids[rows.contact[i]]): (int(rows.cents[i]), int(rows.day[i]))
        for i in range(len(rows.cents))
    }


# -- meaning ------------------------------------------------------------------------------


class Model:
    """The schema-2 cache's meaning, as a dictionary."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Purchase] = {}

    def save(self, purchases: list[Purchase], gone: list[str], replace_all: bool) -> None:
        if replace_all:
            self.rows.clear()
        seen = {p.id for p in purchases} | set(gone)
        self.rows = {k: v for k, v in self.rows.items() if k[0] not in seen}
        for p in purchases:
            self.rows[(p.id, p.contact_id)] = p


_ids = st.sampled_from(["d1", "d2", "d3", "d4", "d5"])
_contacts = st.sampled_from(["1", "2", "3", "007", "x"])
_purchases = st.builds(
    buy, _ids, _contacts, st.sampled_from(["10.00", "-5.00", "0", "12.345"]), st.integers(0, 30)
)
_saves = st.lists(
    st.tuples(st.lists(_purchases, max_size=6), st.lists(_ids, max_size=2), st.booleans(), st.booleans()),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saves=_saves)
def test_every_sequence_of_saves_means_what_the_old_cache_meant(tmp_path_factory, saves):
    model = Model()
    with StateStore(tmp_path_factory.mktemp("s") / "state.db") as store:
        for purchases, gone, replace_all, compact in saves:
            store.save_purchases("p", "a", purchases, gone, replace_all=replace_all, cursor=None)
            model.save(purchases, gone, replace_all)
            if compact:
                store.compact_ledger("p", "a", force=True)
            assert kept(store) == {k: p.amount for k, p in model.rows.items()}
            want = {k: (to_cents(p.amount), p.closed_at.toordinal()) for k, p in model.rows.items()}
            assert as_rows(store) == want


def test_a_retracted_purchase_leaves_a_tombstone_and_counts_are_by_status(store):
    store.save_purchases(
        "p", "a", [buy("d1", "1"), buy("d1", "2"), buy("r1", "1", "-4.00")], replace_all=True, cursor=None
    )
    store.save_purchases("p", "a", [], ["d1"], replace_all=False, cursor=None)
    assert kept(store) == {("r1", "1"): Decimal("-4.00")}
    assert store.ledger_counts("p", "a") == {
        "won": 0,
        "refunded": 1,
        "retracted": 1,
        "chunks": 2,
        "pending": 0,
    }
    store.save_purchases("p", "a", [], ["d1"], replace_all=False, cursor=None)  # idempotent
    assert kept(store) == {("r1", "1"): Decimal("-4.00")}


def test_a_deal_split_across_base_chunks_keeps_all_its_contacts(store, monkeypatch):
    monkeypatch.setattr(ledger_module, "BASE_ROWS", 2)
    store.save_purchases(
        "p",
        "a",
        [buy("d0", "9"), buy("d1", "1"), buy("d1", "2"), buy("d1", "3")],
        replace_all=True,
        cursor=None,
    )
    store.save_purchases("p", "a", [buy("d2", "4")], replace_all=False, cursor=None)
    assert store.compact_ledger("p", "a", force=True)
    assert store.ledger_counts("p", "a")["chunks"] == 3  # 5 rows, 2 per base chunk
    store.save_purchases("p", "a", [buy("d9", "5")], replace_all=False, cursor=None)
    assert {k for k in kept(store) if k[0] == "d1"} == {("d1", "1"), ("d1", "2"), ("d1", "3")}
    assert len(kept(store)) == 6


def test_compaction_waits_for_enough_new_chunks(store, monkeypatch):
    monkeypatch.setattr(ledger_module, "COMPACT_CHUNKS", 3)
    store.save_purchases("p", "a", [buy(f"d{i}", str(i)) for i in range(100)], replace_all=True, cursor=None)
    for n in range(2):
        store.save_purchases("p", "a", [buy(f"d{n}", "1", "99.00")], replace_all=False, cursor=None)
        assert not store.compact_ledger("p", "a")
    store.save_purchases("p", "a", [buy("d7", "1", "99.00")], replace_all=False, cursor=None)
    before = kept(store)
    assert store.compact_ledger("p", "a")
    assert store.ledger_counts("p", "a")["chunks"] == 1
    assert kept(store) == before


def test_a_compaction_cut_short_leaves_the_ledger_as_it_was(store, monkeypatch):
    store.save_purchases("p", "a", [buy("d1", "1"), buy("d2", "2")], replace_all=True, cursor=None)
    store.save_purchases("p", "a", [buy("d1", "1", "5.00")], ["d2"], replace_all=False, cursor=None)
    before = kept(store)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(StateStore, "write_chunk", crash)
    with pytest.raises(KeyboardInterrupt):
        store.compact_ledger("p", "a", force=True)
    assert kept(store) == before
    assert store.ledger_counts("p", "a")["chunks"] == 2


def test_accounts_do_not_see_each_others_ledger(store):
    store.save_purchases("p", "a", [buy("d1", "1")], replace_all=True, cursor=None)
    store.save_purchases("p", "b", [buy("d2", "2")], replace_all=True, cursor=None)
    store.save_purchases("p", "a", [], ["d2"], replace_all=False, cursor=None)
    assert kept(store) == {("d1", "1"): Decimal("10.00")}
    assert [p.id for p in store.purchases("p", "b")] == ["d2"]


# -- columns ------------------------------------------------------------------------------


def test_columns_hold_cents_days_currencies_and_keep_text_ids_apart(store):
    store.save_purchases(
        "p",
        "a",
        [buy("d1", "7", "10.005"), buy("d2", "007", "1.00", 3, None), buy("d3", "x", "2.50", 5, "eur")],
        replace_all=True,
        cursor=None,
    )
    rows = store.ledger_rows("p", "a")
    assert sorted(rows.contact_ids) == ["007", "7", "x"]
    got = {rows.label(i): i for i in range(len(rows.cents))}
    assert rows.cents[got["d1"]] == 1001  # half up, as the core rounds
    assert rows.day[got["d2"]] - rows.day[got["d1"]] == 3
    assert rows.currency[got["d2"]] == -1
    assert rows.currencies[rows.currency[got["d3"]]] == "eur"
    assert rows.first_day() == DAY.date()


def test_plain_integer_ids_are_factorised_by_count(store):
    store.save_purchases(
        "p", "a", [buy(f"d{i}", str(1000 + i % 7)) for i in range(50)], replace_all=True, cursor=None
    )
    rows = store.ledger_rows("p", "a")
    assert rows.contact_ids == [str(1000 + i) for i in range(7)]
    assert rows.contact.dtype == np.int32


def test_amounts_without_cents_are_handed_over_as_objects(store):
    odd = Purchase.model_construct(**{**buy("d2", "1").model_dump(), "amount": Decimal("NaN")})
    store.save_purchases(
        "p", "a", [buy("d1", "1"), odd, buy("d3", "1", "1E+16")], replace_all=True, cursor=None
    )
    rows = store.ledger_rows("p", "a")
    assert len(rows.cents) == 1
    assert sorted(p.id for p in rows.odd) == ["d2", "d3"]
    assert str(next(p for p in rows.odd if p.id == "d3").amount) == "1E+16"  # quoted as sent


def test_an_empty_ledger_has_no_rows(store):
    rows = store.ledger_rows("p", "a")
    assert len(rows) == 0
    assert rows.first_day() is None


# -- migration ----------------------------------------------------------------------------


def test_a_schema_2_purchase_cache_moves_into_the_ledger(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()
    with sqlite3.connect(path) as db:  # make it the store schema 2 made
        db.execute("DROP TABLE ledger_columns")
        db.execute("DROP TABLE ledger_chunks")
        db.execute(
            "CREATE TABLE purchases (platform TEXT NOT NULL, account TEXT NOT NULL, purchase_id TEXT "
            "NOT NULL, contact_id TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT, closed_at TEXT "
            "NOT NULL, modified_at TEXT, PRIMARY KEY (platform, account, purchase_id, contact_id))"
        )
        db.executemany(
            "INSERT INTO purchases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("p", "a", "d1", "1", "12.50", "USD", DAY.isoformat(), None),
                ("p", "a", "d1", "2", "12.50", None, DAY.isoformat(), DAY.isoformat()),
                ("p", "b", "d9", "3", "-1.00", "USD", DAY.isoformat(), None),
            ],
        )
        db.execute("UPDATE schema_version SET version = 2")
    with StateStore(path) as store:
        assert kept(store) == {("d1", "1"): Decimal("12.50"), ("d1", "2"): Decimal("12.50")}
        assert store.purchases("p", "a")[1].modified_at == DAY
        assert [p.amount for p in store.purchases("p", "b")] == [Decimal("-1.00")]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'purchases'").fetchone()


# -- resumable pulls ----------------------------------------------------------------------


def test_a_resumable_full_pull_replaces_the_ledger_only_when_it_ends(store):
    from segsync.sync.state import PullState

    store.save_purchases("p", "a", [buy("old", "1")], replace_all=True, cursor=None)
    state = PullState("50:d2", since=None, started=DAY, newest=DAY, ordered=False)
    store.save_pull_chunk("p", "a", [buy("d1", "1"), buy("d2", "2")], [], state)
    assert kept(store) == {("old", "1"): Decimal("10.00")}, "a pending pull is not read"
    assert store.pull_state("p", "a") == state
    assert store.ledger_counts("p", "a")["pending"] == 1
    # the next job reads page 2 again: d2 comes twice, changed
    later = DAY + dt.timedelta(days=1)
    store.finish_pull("p", "a", [buy("d2", "2", "7.00"), buy("d3", "3")], [], full=True, cursor=later)
    assert kept(store) == {
        ("d1", "1"): Decimal("10.00"),
        ("d2", "2"): Decimal("7.00"),
        ("d3", "3"): Decimal("10.00"),
    }
    assert store.pull_state("p", "a") is None
    assert store.cursor("p", "a") == later
    assert store.ledger_counts("p", "a")["pending"] == 0


def test_an_incremental_resumable_pull_writes_as_it_goes_and_a_full_sync_drops_an_unfinished_one(store):
    from segsync.sync.state import PullState

    store.save_purchases("p", "a", [buy("d1", "1")], replace_all=True, cursor=DAY)
    store.save_pull_chunk("p", "a", [buy("d1", "1", "3.00")], ["d9"], PullState("1:", DAY, DAY, DAY))
    assert kept(store) == {("d1", "1"): Decimal("3.00")}, "upserts are safe to read at once"
    store.save_pull_chunk("p", "b", [buy("x", "1")], [], PullState("1:", None, None, None))
    store.discard_pull("p", "b")
    assert store.pull_state("p", "b") is None
    assert store.ledger_counts("p", "b")["pending"] == 0
    assert store.purchases("p", "b") == []
