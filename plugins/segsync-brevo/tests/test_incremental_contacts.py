"""Incremental contacts on Brevo: between full pulls a sync reads only the contacts modified
since the last one (``modifiedSince``: new ones, and the ones whose address may have changed),
takes the rest and the list members from the state store's cache, and ends where a full pull
would."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segsync.testing import StateFile
from segsync.testing.clock import FakeWallClock
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import AS_OF, KEY, connect

SOLD_AT = dt.datetime(2026, 1, 14, 12, tzinfo=dt.UTC)


@pytest.fixture
def sandbox(clock, seed_data, traffic_log):
    """The account on the state store's clock: the cursor a pull leaves is Brevo's own time."""
    sandbox = BrevoSandbox(secret=KEY, traffic_log=traffic_log, clock=clock)
    sandbox.wall_clock = FakeWallClock(clock).now  # StateFile's, from the same start
    sandbox.seed(seed_data)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def nothing_left_to_do(state, sandbox, clock) -> None:
    check = state.sync(connect(sandbox, clock), as_of=AS_OF, dry_run=True, full=True)
    assert not check.plan.writes_anything, check.plan.summary


def test_an_idle_resync_reads_only_the_contacts_changed_since(sandbox, clock, tmp_path):
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(connect(sandbox, clock), as_of=AS_OF)
    clock.advance(3600)
    # Brevo moves modifiedAt when segsync writes: the first resync reads those contacts back
    state.sync(connect(sandbox, clock), as_of=AS_OF)
    clock.advance(3600)
    idle = connect(sandbox, clock)
    result = state.sync(idle, as_of=AS_OF)
    assert not result.plan.writes_anything
    # the cursor overlaps the newest change by a second: only the contacts of that second again
    newest = max(c.modified for c in sandbox.contacts.values())
    cursor = newest.replace(microsecond=newest.microsecond // 1000 * 1000) - dt.timedelta(seconds=1)
    last_second = sum(c.modified >= cursor for c in sandbox.contacts.values())
    assert result.report.contacts_pulled == last_second < len(sandbox.contacts)
    ops = idle.runner.stats.per_operation
    assert ops["contacts.list"] == 1, "one page of modifiedSince"
    assert "lists.get" not in ops
    nothing_left_to_do(state, sandbox, clock)


def test_a_new_contact_reaches_the_crm_as_a_full_pull_would(sandbox, clock, tmp_path):
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(connect(sandbox, clock), as_of=AS_OF)
    clock.advance(3600)
    new = sandbox.add_contact("new.buyer@example.com", {"FIRSTNAME": "New"})
    sandbox.add_purchase(new, Decimal("250.00"), SOLD_AT)
    result = state.sync(connect(sandbox, clock), as_of=AS_OF)
    assert result.desired.values[new]["segsync_order_count"] == 1
    assert sandbox.contact(new)["attributes"]["SEGSYNC_ORDER_COUNT"] == 1
    nothing_left_to_do(state, sandbox, clock)


def test_a_contact_deleted_in_brevo_is_never_recreated(sandbox, clock, tmp_path):
    """Brevo lists no deleted contacts: the cache keeps one until the next full pull, and its
    writes go by id (a 404), never by an import that would bring the address back."""
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(connect(sandbox, clock), as_of=AS_OF)
    buyer = next(c for c, v in first.desired.values.items() if v["segsync_order_count"] == 1)
    email = sandbox.contact(buyer)["email"]
    clock.advance(3600)
    sandbox.delete_contact(buyer)
    # a month later every recency moves: many writes, sent by import
    later = AS_OF + dt.timedelta(days=30)
    again = state.sync(connect(sandbox, clock, put_max=5), as_of=later)
    assert again.report.contacts_written > 20
    assert again.report.failed_records == 1, "the deleted contact's write, refused"
    sandbox.snapshot()  # settles any import
    assert all(c.email != email for c in sandbox.contacts.values()), "the address came back"
    full = state.sync(connect(sandbox, clock), as_of=later, full=True)
    assert buyer not in full.desired.values
    assert full.report.failed_records == 0
