"""Incremental HubSpot pulls: deals changed since the cursor, by CRM search, through the SDK
and the sandbox over HTTP; past the search cap, bulk imports of one instant, lost and deleted
deals, and the search's own rate limit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from segsync import PullProgress, Purchase, PurchaseRetracted, Rejection
from segsync.sandbox import SeedData

from .conftest import contact, deal

T0 = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def changes(platform, since):
    # the records, without the watermarks between batches
    got = [r for r in platform.iter_purchases(since) if not isinstance(r, PullProgress)]
    bought = {(r.id, r.contact_id) for r in got if isinstance(r, Purchase)}
    gone = {r.id for r in got if isinstance(r, PurchaseRetracted)}
    rejected = {r.record_id for r in got if isinstance(r, Rejection)}
    return got, bought, gone, rejected


def newest(records) -> dt.datetime:
    return max(r.modified_at for r in records if isinstance(r, Purchase) and r.modified_at)


def test_an_incremental_pull_reads_only_what_changed(make_sandbox, make_platform, small_data, clock):
    sandbox = make_sandbox(small_data)
    platform = make_platform(sandbox)
    list(platform.iter_purchases(None))
    cursor = sandbox.now()  # the full pull read everything up to now
    clock.advance(60)
    new = sandbox.add_purchase("107", Decimal("42.00"), T0)
    sandbox.set_deal_stage("5001", "closedlost")
    sandbox.archive_deal("5002")
    got, bought, gone, rejected = changes(platform, cursor + dt.timedelta(seconds=1))
    assert bought == {(new, "107")}
    assert gone == {"5001", "5002"}
    assert not rejected
    ops = platform.runner.stats.per_operation
    assert ops["deals.search"] == 1
    assert ops["deals.list"] == 1, "only the first, full pull listed the deals"
    stamps = [r.modified_at for r in got if isinstance(r, Purchase)]
    assert stamps == sorted(stamps)


def test_nothing_changed_costs_one_search_and_the_archived_listing(
    make_sandbox, make_platform, small_data, clock
):
    sandbox = make_sandbox(small_data)
    platform = make_platform(sandbox)
    list(platform.iter_purchases(None))
    cursor = sandbox.now()
    clock.advance(3600)
    got, *_ = changes(platform, cursor + dt.timedelta(seconds=1))
    assert got == []
    ops = platform.runner.stats.per_operation
    assert (ops["deals.search"], ops["deals.archived"], ops["pipelines.list"]) == (1, 1, 2)
    assert "associations.read" not in ops or ops["associations.read"] == 1, "no association read"


def after_a_full_pull(make_sandbox, make_platform, clock, deals: int, *, cap=10_000, per_second=4):
    """A store of ``deals`` won deals (ids 9000...), pulled once in full a minute ago: the
    sandbox, the platform, the deal ids and the cursor that pull left."""
    contacts = [contact(str(100 + i)) for i in range(20)]
    data = SeedData(contacts, [deal(str(9000 + i), str(100 + i % 20), "10.00") for i in range(deals)])
    sandbox = make_sandbox(data, log=False, search_cap=cap, search_per_second=per_second)
    platform = make_platform(sandbox, search_result_cap=cap, search_per_second=per_second)
    cursor = newest(platform.iter_purchases(None)) + dt.timedelta(seconds=1)
    clock.advance(60)
    return sandbox, platform, [str(9000 + i) for i in range(deals)], cursor


def test_past_the_search_cap_the_walk_narrows_its_window(make_sandbox, make_platform, clock):
    sandbox, platform, ids, cursor = after_a_full_pull(make_sandbox, make_platform, clock, 900, cap=400)
    for i in ids:  # a store integration touching each deal, one after another
        clock.advance(0.01)
        sandbox.set_deal_amount(i, Decimal("11.00"))
    got, bought, gone, _ = changes(platform, cursor)
    assert {b[0] for b in bought} == set(ids)
    assert len([r for r in got if isinstance(r, Purchase)]) == 900, "each deal once"
    assert platform.runner.stats.per_operation["deals.search"] >= 5  # 3 queries of 400 and more pages


def test_a_bulk_import_of_one_instant_past_the_cap_is_walked_by_id(make_sandbox, make_platform, clock):
    sandbox, platform, ids, cursor = after_a_full_pull(make_sandbox, make_platform, clock, 700, cap=400)
    sandbox.bulk_touch_deals(ids)  # 700 deals, one timestamp
    clock.advance(5)
    sandbox.set_deal_stage("9003", "closedlost")  # and one change after it
    got, bought, gone, _ = changes(platform, cursor)
    assert {b[0] for b in bought} == set(ids) - {"9003"}
    assert gone == {"9003"}
    assert len(got) == 700


def test_search_has_its_own_rate_limit(make_sandbox, make_platform, clock):
    sandbox, platform, ids, cursor = after_a_full_pull(make_sandbox, make_platform, clock, 1000, per_second=2)
    sandbox.bulk_touch_deals(ids)
    slept = clock.slept
    changes(platform, cursor)
    assert platform.runner.stats.per_operation["deals.search"] == 5  # 1000 deals, pages of 200
    assert sandbox.rate_limited == 0, "the runner knows the search window: no 429"
    assert clock.slept - slept >= 1.5, "5 searches at 2 a second wait about 2 s"


def test_with_incremental_off_every_pull_is_full(make_sandbox, make_platform, small_data):
    platform = make_platform(make_sandbox(small_data), incremental=False)
    assert platform.incremental_purchases is False
    got = list(platform.iter_purchases(T0))
    assert {r.id for r in got if isinstance(r, Purchase)} == {"5001", "5002", "5003", "5010"}
    assert "deals.search" not in platform.runner.stats.per_operation


def test_the_cursor_passes_open_lost_and_rejected_deals_too(
    make_sandbox, make_platform, small_data, clock, tmp_path
):
    """Deals that are no purchase move the cursor as well (a watermark after each batch): a
    pull does not read them again, however long no new purchase comes."""
    from segsync.testing import StateFile

    def watched():
        platform = make_platform(sandbox)
        seen: list[str] = []
        pull = platform.iter_purchases

        def spy(since):
            for rec in pull(since):
                if isinstance(rec, PurchaseRetracted | Rejection):
                    seen.append(rec.id if isinstance(rec, PurchaseRetracted) else rec.record_id)
                yield rec

        platform.iter_purchases = spy
        return platform, seen

    sandbox = make_sandbox(small_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(make_platform(sandbox), as_of=dt.date(2026, 1, 15))
    clock.advance(60)
    # the first incremental pull reads again what changed in the second before the cursor
    state.sync(make_platform(sandbox), as_of=dt.date(2026, 1, 15))
    clock.advance(3600)
    sandbox.set_deal_stage("5008", "appointmentscheduled")  # a lost deal reopened: no purchase
    clock.advance(60)
    platform, seen = watched()
    state.sync(platform, as_of=dt.date(2026, 1, 15))
    assert "5008" in seen  # with what shares the newest instant before it, read again (ties)
    clock.advance(3600)
    sandbox.bulk_touch_deals(["5005"])  # a won deal whose amount ("call me") is rejected
    clock.advance(60)
    platform, seen = watched()
    state.sync(platform, as_of=dt.date(2026, 1, 15))
    # 5007 (rejected: no close date) is behind the cursor now; 5008, the newest change of the
    # last pull, is in the cursor's one-second overlap and read once more
    assert seen == ["5008", "5005"]
