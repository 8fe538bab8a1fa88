"""segsync.sync.paging: the paging strategies both plugins use, and their loop guards."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from segsync.errors import PermanentError, TransientError
from segsync.sync.paging import CursorPaging, OffsetCursor, OffsetPaging, PageGuard

# -- cursor paging -----------------------------------------------------------------------------


def cursor_pages(
    pages: Mapping[str | None, Mapping[str, Any]],
) -> tuple[list[str | None], Callable[..., Any]]:
    """A fetch serving ``pages`` by token, and the tokens it was asked for."""
    asked: list[str | None] = []

    def fetch(after: str | None) -> Mapping[str, Any]:
        asked.append(after)
        return pages[after]

    return asked, fetch


def page(*ids: int, after: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"results": [{"id": str(i)} for i in ids]}
    if after is not None:
        body["paging"] = {"next": {"after": after, "link": f"https://api.example.com/x?after={after}"}}
    return body


def test_cursor_paging_follows_after_until_it_is_absent():
    asked, fetch = cursor_pages({None: page(1, 2, after="3"), "3": page(3, 4, after="5"), "5": page(5)})
    got = [r["id"] for p in CursorPaging("acme", "contacts.list").pages(fetch) for r in p["results"]]
    assert got == ["1", "2", "3", "4", "5"]
    assert asked == [None, "3", "5"]


@pytest.mark.parametrize(
    "last", [page(1), {"results": [], "paging": {}}, {"results": [], "paging": {"next": {}}}]
)
def test_a_page_without_a_next_token_is_the_last(last):
    asked, fetch = cursor_pages({None: last})
    assert len(list(CursorPaging("acme", "x").pages(fetch))) == 1
    assert asked == [None]


@pytest.mark.parametrize(
    ("pages", "requests", "words"),
    [
        # the same token again: it would loop forever
        ({None: page(1, after="7"), "7": page(2, after="7")}, 2, "repeated a paging cursor"),
        ({None: page(1, after="a"), "a": page(2, after="b"), "b": page(3, after="a")}, 3, "repeated"),
        # new tokens, empty pages, forever
        ({None: page(after="1"), **{str(i): page(after=str(i + 1)) for i in range(1, 50)}}, 4, "nothing new"),
    ],
)
def test_cursor_loops_stop_with_a_permanent_error(pages, requests, words):
    asked, fetch = cursor_pages(pages)
    paging = CursorPaging("acme", "contacts.list", vendor="Acme", max_stale_pages=4)
    with pytest.raises(PermanentError, match=words) as caught:
        list(paging.pages(fetch))
    assert len(asked) == requests
    assert str(caught.value).startswith("acme: contacts.list: Acme ")
    assert "stopping instead of looping forever" in str(caught.value)


def test_the_next_token_can_live_anywhere_in_a_page():
    pages = {None: {"results": [1], "next": "b"}, "b": {"results": [2], "next": None}}
    asked, fetch = cursor_pages(pages)
    paging = CursorPaging("acme", "x", token=lambda page: page.get("next"))
    assert [r for p in paging.pages(fetch) for r in p["results"]] == [1, 2]
    assert asked == [None, "b"]


def test_cursor_paging_is_bounded_by_a_page_count():
    pages = {None: page(0, after="1"), **{str(i): page(i, after=str(i + 1)) for i in range(1, 20)}}
    asked, fetch = cursor_pages(pages)
    with pytest.raises(PermanentError, match="past 5"):
        list(CursorPaging("acme", "x", max_pages=5).pages(fetch))
    assert len(asked) == 5


def test_the_guard_scopes_cursors_per_input():
    guard = PageGuard("acme", "associations.read")
    guard.cursor("100", scope="deal-1")
    guard.cursor("100", scope="deal-2")  # each batch input pages on its own
    with pytest.raises(PermanentError, match="repeated a paging cursor"):
        guard.cursor("100", scope="deal-1")


def test_an_empty_page_then_progress_resets_the_stale_count():
    guard = PageGuard("acme", "x", max_stale_pages=2)
    for new in (False, True, False, True, False):
        guard.progress(new)
    with pytest.raises(PermanentError, match="2 pages in a row"):
        guard.progress(False)


# -- offset paging -----------------------------------------------------------------------------


class Store:
    """An id-ordered list served by offset; ``before_fetch`` changes it between requests."""

    def __init__(self, n: int) -> None:
        self.items: list[dict[str, Any]] = [{"id": i} for i in range(1, n + 1)]
        self.requests: list[tuple[int, int]] = []
        self.before_fetch: Callable[[], None] = lambda: None

    def fetch(self, offset: int, limit: int) -> list[Mapping[str, Any]]:
        self.before_fetch()
        self.requests.append((offset, limit))
        return list(self.items[offset : offset + limit])


def ids(pages: Any) -> list[Any]:
    return [i["id"] for items, _ in pages for i in items]


def offset(limit: int = 10, **kw: Any) -> OffsetPaging:
    return OffsetPaging("acme", "contacts.list", limit=limit, **kw)


@pytest.mark.parametrize("n", [0, 1, 9, 10, 11, 27, 100])
def test_offset_paging_yields_every_item_once_re_reading_the_last(n):
    store = Store(n)
    assert ids(offset().pages(store.fetch)) == list(range(1, n + 1))
    assert [o for o, _ in store.requests] == [0, *range(9, 9 * len(store.requests), 9)][: len(store.requests)]


def test_offset_paging_steps_back_over_deletions_and_skips_nothing():
    store = Store(40)
    calls = 0

    def delete_seen_items() -> None:
        nonlocal calls
        calls += 1
        if calls in (2, 4):  # two deletions of items already yielded, at different points
            del store.items[1:3]

    store.before_fetch = delete_seen_items
    got = ids(offset().pages(store.fetch))
    assert got == list(range(1, 41)), "each item once, in order: the deleted ones were yielded before"
    assert store.requests[:3] == [(0, 10), (9, 10), (0, 10)], "stepped back a page"


def test_offset_paging_yields_a_new_version_of_an_item_again():
    store = Store(25)
    versions = {i: 1 for i in range(1, 26)}

    def fetch(start: int, limit: int) -> list[Mapping[str, Any]]:
        if start > 0 and versions[3] == 1:  # item 3 is modified after the first page: it moves last
            versions[3] = 2
            store.items.append(store.items.pop(2))
            # its old place shifted everything: the pull steps back and reads the new version at the end
        return [{"id": i["id"], "v": versions[i["id"]]} for i in store.items[start : start + limit]]

    paging = offset(version=lambda i: f"{i['id']}@{i['v']}")
    got = [(i["id"], i["v"]) for items, _ in paging.pages(fetch) for i in items]
    assert got.count((3, 1)) == 1
    assert got[-1] == (3, 2)
    assert sorted({i for i, _ in got}) == list(range(1, 26))


def test_offset_paging_resumes_from_a_token():
    store = Store(25)
    first, cursor = next(offset().pages(store.fetch))
    assert [i["id"] for i in first] == list(range(1, 11))
    assert cursor == OffsetCursor(10, "10")
    assert ids(offset().pages(store.fetch, OffsetCursor.parse(cursor.token()))) == list(range(11, 26))


@pytest.mark.parametrize(
    ("token", "cursor"),
    [
        (None, OffsetCursor()),
        ("", OffsetCursor()),
        ("garbage", OffsetCursor()),
        ("-5:", OffsetCursor()),
        ("30:7", OffsetCursor(30, "7")),
    ],
)
def test_offset_tokens_parse_or_start_over(token, cursor):
    assert OffsetCursor.parse(token) == cursor


def test_records_vanishing_faster_than_the_pull_steps_back_are_transient():
    store = Store(100)

    def churn() -> None:
        if store.requests:
            del store.items[0]

    store.before_fetch = churn
    with pytest.raises(TransientError, match="disappearing while paging") as caught:
        ids(offset(max_rewinds=3).pages(store.fetch))
    assert caught.value.operation == "contacts.list"


def test_a_server_that_ignores_the_offset_ends_with_an_error():
    store = Store(50)
    with pytest.raises(TransientError, match="disappearing"):
        ids(offset().pages(lambda start, limit: store.fetch(0, limit)))


def test_full_pages_of_seen_items_forever_stop_with_a_permanent_error():
    # every page starts with the last item seen, as asked, but brings nothing new
    def fetch(start: int, limit: int) -> list[Mapping[str, Any]]:
        return (
            [{"id": 10}] + [{"id": i} for i in range(1, limit)]
            if start
            else [{"id": i} for i in range(1, 11)]
        )

    def repeating(start: int, limit: int) -> list[Mapping[str, Any]]:
        page = fetch(start, limit)
        page[-1] = {"id": 10}
        return page

    with pytest.raises(PermanentError, match="nothing new"):
        ids(offset(max_stale_pages=3).pages(repeating))


def test_offset_paging_is_bounded_by_a_page_count():
    store = Store(1000)
    with pytest.raises(PermanentError, match="past 4"):
        ids(offset(max_pages=4).pages(store.fetch))
    assert len(store.requests) == 4
