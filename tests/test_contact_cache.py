"""The contact cache in the state store: what a full pull saves, how an incremental pull's changes
fold in, confirmed writes and list changes, and when the cache is not to be trusted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segsync.core.models import Contact, ContactUpdate, Rejection
from segsync.sync.state import StateStore

T = dt.datetime(2026, 1, 15, 9, tzinfo=dt.UTC)
LISTS = {"champions": "11", "lost": "12"}


def contact(cid: str, *, lists: frozenset[str] | None = None, **managed: object) -> Contact:
    return Contact(
        id=cid, email=f"c{cid}@example.com", properties={"country": "FR"}, managed=managed, lists=lists
    )


@pytest.fixture
def store(segsync_state_target):
    """A SQLite store, then a PostgreSQL one: every test below runs on both."""
    with StateStore(segsync_state_target) as s:
        yield s.account("hubspot", "portal-1")


def test_a_full_pull_comes_back_as_it_was_saved(store):
    saved = [
        contact(
            "1", segsync_revenue=Decimal("12.50"), segsync_order_count=3, segsync_last=dt.date(2026, 1, 2)
        ),
        contact("2", segsync_segment="lost", segsync_revenue=None),
    ]
    bad = Rejection(kind="contact", record_id="3", reason="missing email")
    store.save_contacts("shape-a", [*saved, bad], replace=True, cursor=T)
    cached = store.cached_contacts("shape-a", None)
    assert cached is not None
    assert cached.contacts == saved
    assert [type(v) for v in cached.contacts[0].managed.values()] == [Decimal, int, dt.date]
    assert cached.rejections == [bad]
    assert cached.cursor == T
    assert store.cached_contacts("shape-b", None) is None, "another shape: no cache"


def test_changes_fold_in_and_keep_each_contacts_place(store):
    store.save_contacts("s", [contact("1"), contact("2"), contact("3")], replace=True, cursor=T)
    later = T + dt.timedelta(hours=1)
    bad = Rejection(kind="contact", record_id="1", reason="missing email")
    store.save_contacts(
        "s", [contact("2", segsync_segment="new"), contact("4"), bad], ["3"], replace=False, cursor=later
    )
    cached = store.cached_contacts("s", None)
    assert [c.id for c in cached.contacts] == ["2", "4"]
    assert cached.contacts[0].managed == {"segsync_segment": "new"}
    assert cached.rejections == [bad]
    assert cached.cursor == later
    store.save_contacts("s", [contact("1")], replace=False, cursor=later)
    assert [c.id for c in store.cached_contacts("s", None).contacts] == ["1", "2", "4"], "back in its place"


def test_confirmed_writes_reach_the_cached_contacts(store):
    store.save_contacts("s", [contact("1", segsync_segment="lost"), contact("2")], replace=True, cursor=T)
    store.record_written(1, [ContactUpdate(contact_id="1", values={"segsync_segment": "champions"})])
    store.record_written(1, [ContactUpdate(contact_id="9", values={"segsync_segment": "lost"})])  # not cached
    cached = store.cached_contacts("s", None)
    assert cached.contacts[0].managed == {"segsync_segment": "champions"}
    assert [c.id for c in cached.contacts] == ["1", "2"]
    assert store.written_values()["9"] == {"segsync_segment": "lost"}


def test_inline_memberships_are_known_for_the_list_ids_pulled(store):
    champions = frozenset({"champions"})
    store.save_contacts(
        "s",
        [contact("1", lists=champions), contact("2", lists=frozenset())],
        replace=True,
        cursor=T,
        lists=LISTS,
    )
    assert [c.lists for c in store.cached_contacts("s", LISTS).contacts] == [champions, frozenset()]
    assert store.cached_members("champions", "11") == {"1"}
    assert store.cached_members("champions", "99") is None, "a recreated list: members unknown"
    store.members_changed("lost", "12", ["2"], added=True)
    store.members_changed("champions", "11", ["1"], added=False)
    assert [c.lists for c in store.cached_contacts("s", LISTS).contacts] == [frozenset(), frozenset({"lost"})]
    store.save_contacts("s", [contact("2", lists=champions)], replace=False, cursor=T, lists=LISTS)
    assert store.cached_members("lost", "12") == set(), (
        "a pulled contact's memberships replace what was known"
    )


def test_members_of_lists_read_separately(store):
    store.save_contacts("s", [contact("1"), contact("2")], replace=True, cursor=T)
    assert store.cached_members("champions", "11") is None
    store.save_members("champions", "11", ["1", "2"])
    store.members_changed("champions", "11", ["2"], added=False)
    store.members_changed("lost", "12", ["1"], added=True)  # never read: stays unknown
    assert store.cached_members("champions", "11") == {"1"}
    assert store.cached_members("lost", "12") is None
    store.save_contacts("s", [contact("1", segsync_segment="x")], replace=False, cursor=T)
    assert store.cached_members("champions", "11") == {"1"}, "a changed contact keeps its memberships"
    store.save_contacts("s", [], ["1"], replace=False, cursor=T)
    assert store.cached_members("champions", "11") == set(), "a deleted contact leaves its lists"
    store.save_contacts("s", [contact("2")], replace=True, cursor=T)
    assert store.cached_members("champions", "11") is None, "a full pull reads every list again"


def test_forgetting_the_cache_means_a_full_pull(store):
    store.save_contacts("s", [contact("1")], replace=True, cursor=T)
    store.forget_contact_cache()
    assert store.cached_contacts("s", None) is None
    assert store.cursor("contacts") is None
