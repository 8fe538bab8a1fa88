"""Faults met through brevo-python: every fault kind of the sandbox's fault plan on single calls,
then the core's reliability harness (faults, kills, deletions) on whole syncs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from segsync import (
    ContactUpdate,
    FieldSpec,
    ListSpec,
    PermanentError,
    RetryPolicy,
    SyncPaused,
    TransientError,
)
from segsync.sandbox import FaultPlan
from segsync.testing import SandboxWorld
from segsync.testing.reliability import ReliabilitySuite
from segsync_brevo.platform import BrevoPlatform

from .conftest import connect, start_sandbox

SCORE = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
REVENUE = FieldSpec(key="segsync_revenue", label="Revenue", type="number")


def faults(sandbox, *script, path=None, method=None, hang=0.3):
    sandbox.server.set_faults(
        FaultPlan(
            script=list(script), path_pattern=path, methods=[method] if method else [], hang_seconds=hang
        )
    )


def test_a_burst_429_waits_for_the_reset_header_and_succeeds(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    faults(quiet_sandbox, "429", path=r"^/v3/contacts$")
    assert len(list(platform.iter_contacts(["email"], [], {}))) == 60
    assert platform.runner.stats.rate_limited == 1
    assert 1.0 in clock.sleeps, "the wait came from x-sib-ratelimit-reset"


def test_the_hourly_budget_pauses_the_job_from_headers_or_from_the_first_429(clock, seed_data):
    # The account's real budget is 1 an hour, but the settings claim the base tier's 100.
    sandbox = start_sandbox(clock, seed_data, None, other_per_hour=1)
    try:
        platform = connect(sandbox, clock, policy=RetryPolicy(max_rate_wait=600))
        platform.check()  # spends the one call; its answer says remaining 0, reset 3600
        with pytest.raises(SyncPaused) as paused:
            list(platform.iter_purchases(None))
        assert paused.value.resume_after == pytest.approx(3600, abs=2)
        assert sandbox.rate_limited == 0, "the headers were enough: no 429"
        # A new process knows nothing yet: its first call reveals the limit, and it pauses.
        fresh = connect(sandbox, clock, policy=RetryPolicy(max_rate_wait=600))
        with pytest.raises(SyncPaused) as again:
            list(fresh.iter_purchases(None))
        assert again.value.resume_after == pytest.approx(3600, abs=2)
        assert sandbox.rate_limited == 1
        assert fresh.runner.stats.rate_limited == 1
    finally:
        sandbox.stop()


@pytest.mark.parametrize("kind", ["500", "502", "503", "drop"])
def test_server_errors_and_drops_are_retried(quiet_sandbox, clock, kind):
    platform = connect(quiet_sandbox, clock)
    platform.create_fields([SCORE])
    faults(quiet_sandbox, kind, kind, path=r"/contacts/\d+$", method="PUT")
    result = platform.write_fields([ContactUpdate(contact_id="1001", values={SCORE.key: "444"})])
    assert result.ok == ("1001",)
    assert platform.runner.stats.retries == 2
    assert quiet_sandbox.contact("1001")["attributes"]["SEGSYNC_RFM_SCORE"] == "444"


def test_a_timeout_is_retried_within_the_settings_timeout(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock, timeout=0.2)
    faults(quiet_sandbox, "timeout", path=r"^/v3/crm/pipeline", hang=0.4)
    assert "Won" in platform.check()[-1]
    assert platform.runner.stats.retries == 1


def test_an_import_whose_answer_was_lost_is_sent_again_harmlessly(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock, put_max=0)
    platform.create_fields([REVENUE])
    faults(quiet_sandbox, "lost_response", path=r"^/v3/contacts/import$")
    ids = [str(i) for i in range(1020, 1030)]
    result = platform.write_fields(
        [ContactUpdate(contact_id=c, values={REVENUE.key: Decimal("9.5")}) for c in ids]
    )
    assert set(result.ok) == set(ids)
    assert len(quiet_sandbox.processes) == 2, "the lost import ran too"
    assert all(p.done for p in quiet_sandbox.processes.values())
    assert {quiet_sandbox.contact(c)["attributes"]["SEGSYNC_REVENUE"] for c in ids} == {9.5}


def test_polls_survive_faults(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock, put_max=0, timeout=0.2)
    platform.create_fields([SCORE])
    faults(quiet_sandbox, "503", "timeout", "drop", path=r"^/v3/processes/", hang=0.3)
    result = platform.write_fields([ContactUpdate(contact_id="1021", values={SCORE.key: "1"})])
    assert result.ok == ("1021",)
    assert platform.runner.stats.per_operation["processes.get"] == 3 + 3


def test_memberships_whose_answer_was_lost_count_as_done(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    lst = platform.create_list(ListSpec(key="k", name="segsync · K"), dynamic=False)
    faults(quiet_sandbox, "lost_response", path=r"/contacts/add$")
    ids = [str(i) for i in range(1000, 1005)]
    result = platform.add_members(lst.id, ids)
    assert set(result.ok) == set(ids)
    assert not result.failed
    assert quiet_sandbox.list_member_ids(lst.id) == set(ids)
    faults(quiet_sandbox, "lost_response", path=r"/contacts/remove$")
    assert set(platform.remove_members(lst.id, ids).ok) == set(ids)
    assert quiet_sandbox.list_member_ids(lst.id) == set()


def test_a_list_create_whose_answer_was_lost_is_found_not_made_twice(quiet_sandbox, clock):
    """The engine's ensure-step: create at most once, then look before creating again."""
    platform = connect(quiet_sandbox, clock)
    platform.create_fields([SCORE])  # makes the folder
    spec = ListSpec(key="vip", name="segsync · VIP")
    faults(quiet_sandbox, "lost_response", path=r"^/v3/contacts/lists$", method="POST")
    with pytest.raises(TransientError), platform.runner.at_most_once():
        platform.create_list(spec, dynamic=False)
    found = platform.find_list(spec.name)
    assert found is not None
    assert quiet_sandbox.snapshot()["list_names"] == ["segsync · VIP"]


def test_the_folder_and_import_list_are_ensured_exactly_once_through_lost_answers(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    faults(
        quiet_sandbox, "lost_response", "lost_response", path=r"^/v3/contacts/(folders|lists)$", method="POST"
    )
    platform.create_fields([SCORE])
    assert list(quiet_sandbox.folders.values()) == ["segsync"]
    assert [lst.name for lst in quiet_sandbox.lists.values()] == ["segsync · synced contacts"]


def test_an_attribute_create_whose_answer_was_lost_is_not_an_error(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    faults(quiet_sandbox, "lost_response", path=r"^/v3/contacts/attributes/")
    platform.create_fields([SCORE, REVENUE])
    remote = platform.inspect_fields([SCORE, REVENUE])
    assert all(remote.values())


def test_contacts_deleted_between_pull_and_write_fail_per_record(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    pulled = {c.id for c in platform.iter_contacts(["email"], [], {})}
    platform.create_fields([SCORE])
    lst = platform.create_list(ListSpec(key="k", name="segsync · K"), dynamic=False)
    quiet_sandbox.delete_contact("1003")
    assert "1003" in pulled
    written = platform.write_fields(
        [ContactUpdate(contact_id=c, values={SCORE.key: "2"}) for c in ("1002", "1003")]
    )
    assert written.ok == ("1002",)
    assert written.failed[0].record_id == "1003"
    added = platform.add_members(lst.id, ["1002", "1003"])
    assert added.ok == ("1002",)
    assert [f.record_id for f in added.failed] == ["1003"]


def test_a_list_removed_behind_segsyncs_back_is_an_error_and_gone(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock)
    lst = platform.create_list(ListSpec(key="k", name="segsync · K"), dynamic=False)
    quiet_sandbox.delete_list(lst.id)
    with pytest.raises(PermanentError) as caught:
        platform.add_members(lst.id, ["1001"])
    assert caught.value.status == 404
    assert caught.value.category == "document_not_found"
    assert platform.get_list(lst.id) is None
    assert platform.find_list("segsync · K") is None


def test_no_import_is_sent_when_its_status_polls_cannot_be_paid_for(quiet_sandbox, clock):
    platform = connect(
        quiet_sandbox, clock, put_max=0, other_per_hour=1, policy=RetryPolicy(max_rate_wait=60)
    )
    platform.create_fields([SCORE])
    platform.check()  # the pipelines read spends the hour's only "other" call
    with pytest.raises(SyncPaused):
        platform.write_fields([ContactUpdate(contact_id="1021", values={SCORE.key: "1"})])
    assert quiet_sandbox.processes == {}, "nothing was imported"


@pytest.mark.reliability
class TestBrevoReliability(ReliabilitySuite):
    def make_world(self) -> SandboxWorld:
        # A timeout fault holds the connection 0.2 s; the client gives up after 0.1 s. First
        # syncs (80 contacts) write through imports, later small ones one PUT per contact.
        return SandboxWorld(BrevoPlatform, settings={"timeout": 0.1, "put_max": 20}, hang_seconds=0.2)
