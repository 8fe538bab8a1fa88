"""Resumable purchase pulls: what they save with each chunk, and the cursor they leave."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segsync.core.models import Purchase
from segsync.sync.pull import CURSOR_OVERLAP, ResumablePull
from segsync.sync.state import StateStore

T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


def buy(pid: str, minutes: int) -> Purchase:
    stamp = T0 + dt.timedelta(minutes=minutes)
    return Purchase(id=pid, contact_id="1", amount=Decimal(1), closed_at=stamp, modified_at=stamp)


@pytest.fixture
def account(tmp_path):
    with StateStore(tmp_path / "state.db") as store:
        yield store.account("p", "a")


def pull_pages(account, pages, chunk=2):
    """Feed ``pages`` as a platform would: the token names a page once it was read whole."""
    tokens: dict[str, str] = {}
    pull = ResumablePull(account, None, chunk, lambda: tokens.get("purchases"))
    for n, page in enumerate(pages, 1):
        for rec in page:
            pull.add(rec)
        tokens["purchases"] = f"{n}:"
    return pull


def test_in_modification_order_the_cursor_is_the_newest_change(account):
    pull = pull_pages(account, [[buy("a", 1), buy("b", 2)], [buy("c", 3), buy("d", 9)]])
    assert pull.cursor() == T0 + dt.timedelta(minutes=9) - CURSOR_OVERLAP


def test_out_of_order_the_cursor_is_where_the_first_page_stood(account):
    # creation order: a page read early may change while later pages are read
    pull = pull_pages(account, [[buy("a", 5), buy("b", 2)], [buy("c", 30), buy("d", 9)]])
    assert not pull.ordered
    assert pull.cursor() == T0 + dt.timedelta(minutes=5) - CURSOR_OVERLAP


def test_each_chunk_is_saved_with_the_token_of_the_last_page_read_whole(account):
    pull_pages(account, [[buy("a", 1)], [buy("b", 2), buy("c", 3)], [buy("d", 4)]], chunk=2)
    saved = account.pull_state()
    assert saved is not None
    # b filled the first chunk mid-page 2 (saved with "1:": page 2 is read again on resume);
    # d filled the second on page 3, after page 2 was read whole
    assert saved.token == "2:"
    assert saved.since is None
    assert account.ledger_counts()["pending"] == 2


def test_a_resumed_pull_goes_on_from_what_was_saved(account):
    first = pull_pages(account, [[buy("a", 5), buy("b", 2)], [buy("c", 3)]], chunk=2)
    first.interrupted()
    saved = account.pull_state()
    tokens = {"purchases": "2:"}
    again = ResumablePull.resume(account, saved, 2, lambda: tokens.get("purchases"))
    again.add(buy("d", 40))
    again.finish()
    assert {p.id for p in account.purchases()} == {"a", "b", "c", "d"}
    assert account.cursor() == T0 + dt.timedelta(minutes=5) - CURSOR_OVERLAP
    assert account.pull_state() is None


def test_a_full_pull_out_of_order_holds_a_chunk_at_most_and_replaces_the_ledger_at_its_end(account):
    from segsync.sync.pull import PurchasePull

    account.save_purchases([buy("old", 1)], replace_all=True, cursor=None)
    pull = PurchasePull(account, None, True, 2)
    for pid, minutes in (("a", 5), ("b", 3), ("c", 9), ("d", 1), ("e", 7)):  # id order, not time
        pull.add(buy(pid, minutes))
        assert len(pull.buffer) < 2
        assert [p.id for p in account.purchases()] == ["old"], "the ledger reads as before"
    pull.finish()
    assert sorted(p.id for p in account.purchases()) == ["a", "b", "c", "d", "e"]


def test_a_full_pull_cut_short_leaves_the_ledger_and_the_next_starts_clean(account):
    from segsync.sync.pull import PurchasePull

    account.save_purchases([buy("old", 1)], replace_all=True, cursor=None)
    cut = PurchasePull(account, None, True, 2)
    for pid, minutes in (("a", 5), ("b", 3), ("c", 9)):
        cut.add(buy(pid, minutes))
    cut.interrupted()  # a pause, or a kill: no finish
    assert [p.id for p in account.purchases()] == ["old"]
    again = PurchasePull(account, None, True, 2)
    for pid, minutes in (("x", 4), ("y", 2), ("z", 6)):  # spills too: pending chunks of its own
        again.add(buy(pid, minutes))
    again.finish()
    assert sorted(p.id for p in account.purchases()) == ["x", "y", "z"], "nothing of the cut pull came back"
