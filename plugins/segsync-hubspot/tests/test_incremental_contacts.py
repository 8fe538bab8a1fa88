"""Incremental contacts: between full pulls a sync reads from HubSpot only the contacts created
or deleted since the last one (by CRM search and the archived listing), takes the rest and the
list members from the state store's cache, and ends where a full pull would."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from segsync.testing import StateFile

from .conftest import AS_OF

SOLD_AT = dt.datetime(2026, 1, 14, 12, tzinfo=dt.UTC)


def a_buyer_in_a_list(sandbox, result) -> str:
    """A contact segsync put in one of its lists."""
    for _key, members in sorted(result.desired.members.items()):
        if members:
            return sorted(members)[0]
    raise AssertionError("no list has members")


def nothing_left_to_do(state, make_platform, sandbox) -> None:
    """A full pull (dry run) finds the CRM already as the account's data says it should be."""
    check = state.sync(make_platform(sandbox), as_of=AS_OF, dry_run=True, full=True)
    assert not check.plan.writes_anything, check.plan.summary


def test_an_idle_resync_reads_no_contact_and_no_list_member(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = make_platform(sandbox)
    state.sync(first, as_of=AS_OF)
    assert first.runner.stats.per_operation["contacts.list"] >= 2
    clock.advance(3600)
    idle = make_platform(sandbox)
    result = state.sync(idle, as_of=AS_OF)
    ops = idle.runner.stats.per_operation
    assert not result.plan.writes_anything
    assert not {"contacts.list", "lists.members", "lists.get"} & set(ops)
    assert (ops["contacts.search"], ops["contacts.archived"], ops["lists.get_many"]) == (1, 1, 1)
    assert idle.runner.stats.calls <= 10, dict(ops)
    assert result.report.contacts_pulled == 0
    assert result.report.contacts_cached == len(demo_data.contacts)
    assert result.report.contacts_text() == f"0 contacts ({len(demo_data.contacts)} more from the cache)"
    nothing_left_to_do(state, make_platform, sandbox)


def test_new_and_deleted_contacts_reach_the_crm_as_a_full_pull_would(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(make_platform(sandbox), as_of=AS_OF)
    clock.advance(3600)
    new = sandbox.add_contact("new.buyer@example.com", {"firstname": "New"})
    sandbox.add_purchase(new, Decimal("250.00"), SOLD_AT)
    gone = a_buyer_in_a_list(sandbox, first)
    sandbox.delete_contact(gone)

    platform = make_platform(sandbox)
    result = state.sync(platform, as_of=AS_OF)
    assert result.report.contacts_pulled == 1
    assert result.desired.values[new]["segsync_order_count"] == 1
    assert sandbox.contact_values(new)["segsync_order_count"] == "1"
    assert gone not in result.desired.values
    assert "contacts.list" not in platform.runner.stats.per_operation
    nothing_left_to_do(state, make_platform, sandbox)


def test_a_hand_edit_of_a_managed_field_is_repaired_by_the_full_pull(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    """The cache holds what segsync wrote: an edit behind its back is seen by the next full pull."""
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(make_platform(sandbox), as_of=AS_OF)
    buyer = next(c for c, v in first.desired.values.items() if v["segsync_order_count"] == 2)
    clock.advance(3600)
    sandbox.set_contact_property(buyer, "segsync_order_count", "7")
    assert not state.sync(make_platform(sandbox), as_of=AS_OF).report.contacts_written
    repaired = state.sync(make_platform(sandbox), as_of=AS_OF, full=True)
    assert repaired.report.contacts_written == 1
    assert sandbox.contact_values(buyer)["segsync_order_count"] == "2"


def test_a_list_deleted_in_hubspot_is_recreated_and_refilled(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(make_platform(sandbox), as_of=AS_OF)
    ids = {lst.id for lst in sandbox.account.lists.values() if not lst.deleted}
    victim = next(i for i in sorted(ids) if sandbox.list_member_ids(i))
    members = sandbox.list_member_ids(victim)
    sandbox.delete_list(victim)
    clock.advance(3600)
    again = state.sync(make_platform(sandbox), as_of=AS_OF)
    assert again.report.lists_created == 1
    fresh = [lst for lst in sandbox.account.lists.values() if not lst.deleted and lst.id not in ids]
    assert len(fresh) == 1
    assert sandbox.list_member_ids(fresh[0].id) == members
    nothing_left_to_do(state, make_platform, sandbox)


def test_with_the_incremental_setting_off_every_contact_is_read(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(make_platform(sandbox, incremental=False), as_of=AS_OF)
    clock.advance(3600)
    again = make_platform(sandbox, incremental=False)
    state.sync(again, as_of=AS_OF)
    ops = again.runner.stats.per_operation
    assert ops["contacts.list"] >= 2
    assert "contacts.search" not in ops


def test_concurrent_write_batches_leave_the_crm_as_one_at_a_time_does(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    """Contacts pulled beside the purchases, four write batches in flight at once, one of them
    answered 503 first: the same calls, the same CRM, the same rejections and records in the
    state store as one call at a time."""
    from segsync.sandbox import FaultPlan

    outcomes = []
    for concurrency in (1, 4):
        sandbox = make_sandbox(demo_data)
        sandbox.server.set_faults(FaultPlan(script=["ok", "503"], path_pattern="/batch/update$"))
        state = StateFile(tmp_path / f"state-{concurrency}.db", clock=clock)
        platform = make_platform(sandbox)
        result = state.sync(platform, as_of=AS_OF, concurrency=concurrency)
        ops = platform.runner.stats.per_operation
        outcomes.append(
            (
                sandbox.snapshot(),
                result.report.contacts_written,
                result.rejections,
                ops["contacts.write"],
                ops["lists.add"],
                platform.runner.stats.calls,
            )
        )
        assert sandbox.faults_injected == {"503": 1}, sandbox.faults_injected
        idle = state.sync(make_platform(sandbox), as_of=AS_OF)
        assert not idle.plan.writes_anything, "every confirmed write reached the contact cache"
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3] > 1, "more than one write batch"


def test_a_list_whose_members_come_and_go_costs_one_call(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    first = state.sync(make_platform(sandbox), as_of=AS_OF)
    clock.advance(3600)
    for buyer in sorted(first.desired.values)[::8]:  # an eighth buy again: others are pushed out
        sandbox.add_purchase(buyer, Decimal("500.00"), SOLD_AT)
    platform = make_platform(sandbox)
    later = state.sync(platform, as_of=AS_OF)
    summary = later.plan.summary
    both = {k for k, n in summary.list_adds.items() if n} & {k for k, n in summary.list_removes.items() if n}
    changed = {k for k, n in (*summary.list_adds.items(), *summary.list_removes.items()) if n}
    assert both, "some list gains and loses members"
    ops = platform.runner.stats.per_operation
    assert ops["lists.change"] == len(both)
    assert ops["lists.add"] + ops["lists.remove"] + ops["lists.change"] == len(changed)
    nothing_left_to_do(state, make_platform, sandbox)


def test_a_property_the_rules_read_is_read_again_when_it_changes(
    make_sandbox, make_platform, demo_data, clock, tmp_path
):
    """Rules reading ``country``: the incremental pull searches by ``lastmodifieddate``, so a
    contact whose country changed reaches compute with the new one."""
    import dataclasses

    from segsync.testing.reliability import standard_spec

    base = standard_spec()
    seen: dict[str, str | None] = {}

    def compute(contacts, ledger, as_of):
        seen.update({c.id: c.properties.get("country") for c in contacts})
        return base.compute(contacts, ledger, as_of)

    spec = dataclasses.replace(base, properties=("email", "country"), compute=compute)
    sandbox = make_sandbox(demo_data)
    state = StateFile(tmp_path / "state.db", clock=clock)
    state.sync(make_platform(sandbox), as_of=AS_OF, spec=spec)
    moved = sorted(seen)[3]
    assert seen[moved] != "NZ"
    clock.advance(3600)
    sandbox.set_contact_property(moved, "country", "NZ")
    platform = make_platform(sandbox)
    state.sync(platform, as_of=AS_OF, spec=spec)
    assert seen[moved] == "NZ"
    ops = platform.runner.stats.per_operation
    assert "contacts.list" not in ops
    assert ops["contacts.search"] >= 1
