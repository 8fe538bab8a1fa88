"""The sync engine against the in-memory CRM: phases, batching, hooks, failures, pauses, resumes."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest

from segsync.core.models import (
    Contact,
    FieldOption,
    FieldSpec,
    FieldValue,
    ListSpec,
    Purchase,
    Rejection,
)
from segsync.core.plan import FieldConflict, UpdateFieldOptions
from segsync.errors import AuthError, JobLocked, PermanentError, PermissionDenied, SyncPaused
from segsync.plugins.hookspecs import hookimpl
from segsync.plugins.manager import Hooks, make_plugin_manager
from segsync.sandbox import FaultPlan, SeedData
from segsync.sandbox.seed import SeedContact, SeedPurchase
from segsync.sync.engine import Progress, SyncSpec, run_sync
from segsync.sync.runner import RetryPolicy
from segsync.sync.state import LockOwner, StateStore
from segsync.testing import (
    FakeClock,
    FakeCRM,
    FakeInlinePlatform,
    FakeSettings,
    FakeWallClock,
    FakeWorld,
    make_runner,
)
from segsync.testing.fake import FakePlatform

AS_OF = dt.date(2026, 1, 15)
ACCOUNT = "fake:test"
ORDERS = FieldSpec(key="segsync_orders", label="Orders", type="number")
SPENT = FieldSpec(key="segsync_spent", label="Spent", type="number")
LAST = FieldSpec(key="segsync_last", label="Last purchase", type="date")
TIER = FieldSpec(
    key="segsync_tier",
    label="Tier",
    type="enumeration",
    options=(FieldOption(value="new", label="New"), FieldOption(value="repeat", label="Repeat")),
)
FIELDS = (ORDERS, SPENT, LAST, TIER)
LISTS = tuple(
    ListSpec(key=f"tier.{t}", name=f"segsync · {t.title()}", filter_field="segsync_tier", filter_value=t)
    for t in ("new", "repeat")
)


@dataclass(frozen=True)
class Change:
    contact_id: str
    set_key: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Desired:
    fields: tuple[FieldSpec, ...]
    lists: tuple[ListSpec, ...]
    values: dict[str, dict[str, FieldValue]]
    members: dict[str, frozenset[str]]
    changes: tuple[Change, ...]
    rejections: tuple[Rejection, ...]


def tiers(contacts: Sequence[Contact], purchases: Sequence[Purchase], as_of: dt.date) -> Desired:
    """A tiny project: order count, money spent, last purchase date, and a new/repeat tier."""
    by_contact: dict[str, list[Purchase]] = {}
    for p in purchases:
        by_contact.setdefault(p.contact_id, []).append(p)
    values: dict[str, dict[str, FieldValue]] = {}
    members: dict[str, set[str]] = {"tier.new": set(), "tier.repeat": set()}
    changes, rejections = [], []
    for c in contacts:
        if not c.email:
            rejections.append(Rejection(kind="contact", record_id=c.id, reason="missing email"))
            continue
        bought = by_contact.get(c.id, [])
        tier = None if not bought else "new" if len(bought) == 1 else "repeat"
        values[c.id] = {
            "segsync_orders": len(bought) or None,
            "segsync_spent": sum((p.amount for p in bought), Decimal(0)) if bought else None,
            "segsync_last": max(p.closed_at for p in bought).date() if bought else None,
            "segsync_tier": tier,
        }
        if tier:
            members[f"tier.{tier}"].add(c.id)
        old = c.managed.get("segsync_tier")
        if old != tier:
            changes.append(Change(c.id, "tier", old if isinstance(old, str) else None, tier))
    frozen = {k: frozenset(v) for k, v in members.items()}
    return Desired(FIELDS, LISTS, values, frozen, tuple(changes), tuple(rejections))


SPEC = SyncSpec(FIELDS, LISTS, ("email", "country"), tiers)


def seed_data(n: int = 12) -> SeedData:
    contacts = [
        SeedContact(
            str(100 + i),
            "" if i == 5 else f"c{i}@example.com",
            "F",
            "L",
            "US",
            "X",
            "30",
            "",
            "",
            "2024-01-01",
        )
        for i in range(n)
    ]
    purchases = []
    for i in range(n):
        for k in range(i % 3):  # 0, 1 or 2 orders
            day = dt.date(2025, 12, 1) + dt.timedelta(days=i + k)
            purchases.append(
                SeedPurchase(f"D{i}-{k}", str(100 + i), f"{10 + i}.50", "USD", f"{day}T12:00:00Z", "won")
            )
    purchases.append(SeedPurchase("BAD", "101", "", "USD", "2025-12-01T12:00:00Z", "won"))
    return SeedData(contacts, purchases)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @hookimpl
    def sync_started(self, job):
        self.events.append(("started", job))

    @hookimpl
    def segment_changed(self, change):
        self.events.append(("changed", change))

    @hookimpl
    def sync_finished(self, report):
        self.events.append(("finished", report))

    def of(self, kind: str) -> list:
        return [e for k, e in self.events if k == kind]


class Env:
    """A fake CRM, a state file and the knobs to run syncs against them."""

    def __init__(self, tmp_path, settings: FakeSettings | None = None, platform_cls=FakePlatform, data=None):
        self.clock = FakeClock()
        self.wall = FakeWallClock(self.clock)
        self.world = FakeWorld(
            platform_cls, settings or FakeSettings(write_batch=3, membership_batch=2, page_size=5)
        )
        self.world.start(data or seed_data(), clock=self.clock)
        self.crm = self.world.crm
        self.path = tmp_path / "state.db"
        self.store = StateStore(self.path, wall_clock=self.wall)
        self.recorder = Recorder()
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(self.recorder)
        self.hooks = Hooks(pm)
        self.policy = RetryPolicy(max_attempts=4, backoff_initial=0.1)
        self.runner = make_runner(self.world, self.clock, self.policy)
        self.platform = self.world.connect(self.runner)

    def sync(self, spec: SyncSpec = SPEC, **kw):
        return run_sync(
            self.platform, spec, store=self.store, account=ACCOUNT, as_of=AS_OF, hooks=self.hooks, **kw
        )

    def values(self, cid: str) -> dict[str, str]:
        return self.crm.snapshot()["fields"].get(cid, {})

    def writes(self) -> int:
        return sum(
            1 for op, out in self.crm.requests if op in ("contacts.update", "lists.add", "lists.remove")
        )


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.store.close()


# -- the happy path --------------------------------------------------------------------------


def test_first_sync_creates_fields_lists_values_and_members(env):
    result = env.sync()
    r = result.report
    assert r.status == "succeeded"
    assert (r.fields_created, r.lists_created) == (4, 2)
    assert r.contacts_pulled == 12
    assert r.rejected == 2  # the contact without email, the deal without amount
    assert r.contacts_written == 7  # 8 buyers minus the one without email
    snap = env.crm.snapshot()
    assert snap["field_defs"] == ["segsync_last", "segsync_orders", "segsync_spent", "segsync_tier"]
    assert snap["lists"] == {
        "segsync · New": ["101", "104", "107", "110"],
        "segsync · Repeat": ["102", "108", "111"],
    }
    assert snap["fields"]["102"] == {
        "segsync_last": "2025-12-04",
        "segsync_orders": "2",
        "segsync_spent": "25.00",
        "segsync_tier": "repeat",
    }
    assert "105" not in snap["fields"], "a rejected contact gets nothing written"
    assert {r.record_id for r in result.rejections} == {"105", "BAD"}
    assert env.store.rejections(r.job.job_id) == list(result.rejections)


def test_second_sync_writes_nothing(env):
    env.sync()
    before = env.writes()
    second = env.sync()
    assert second.plan is not None
    assert not second.plan.writes_anything
    assert second.report.write_calls == 0
    assert env.writes() == before


def test_batches_respect_the_platform_maxima_and_checkpoint_each(env):
    result = env.sync()
    assert env.crm.count("contacts.update") == math.ceil(7 / 3)
    plan = result.plan
    assert plan is not None
    adds = plan.summary.list_adds
    assert env.crm.count("lists.add") == sum(math.ceil(n / 2) for n in adds.values())
    cp = env.store.last_checkpoint(result.report.job.job_id)
    assert cp is not None
    assert cp.batches == 1 + 2 + math.ceil(7 / 3) + sum(math.ceil(n / 2) for n in adds.values())
    assert cp.detail["contacts_written"] == 7


APPLY_OPS = {
    "contacts.update": "contacts",
    "lists.add": "contacts",
    "lists.remove": "contacts",
    "groups.get": "other",
    "groups.create": "other",
    "fields.create": "other",
    "fields.update": "other",
    "lists.create": "other",
}


def apply_calls(env: Env, since: int = 0) -> dict[str, int]:
    spent: dict[str, int] = {}
    for op, _ in env.crm.requests[since:]:
        if op in APPLY_OPS:
            spent[APPLY_OPS[op]] = spent.get(APPLY_OPS[op], 0) + 1
    return spent


def test_the_plan_prices_the_apply_phase(env):
    first = env.sync()
    assert first.plan is not None
    priced = dict(first.plan.summary.calls)
    # creating the property group the first time is the one call no plan can know of
    assert apply_calls(env) == {**priced, "other": priced["other"] + 1}
    env.crm.delete_list(env.store.remote_ids("fake", ACCOUNT, "list")["tier.new"][0])
    env.crm.add_purchase("100", Decimal("1.00"), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    env.crm.add_purchase("101", Decimal("1.00"), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    since = len(env.crm.requests)
    second = env.sync()
    assert second.plan is not None
    assert apply_calls(env, since) == dict(second.plan.summary.calls)


def test_dry_run_writes_nothing_takes_no_lock_and_is_recorded(env):
    result = env.sync(dry_run=True)
    assert result.plan is not None
    assert result.plan.summary.contacts_to_write == 7
    assert env.writes() == 0
    assert env.crm.snapshot()["field_defs"] == []
    job = env.store.job(result.report.job.job_id)
    assert job.dry_run
    assert job.status == "succeeded"
    assert env.store.lock_holder("fake", ACCOUNT) is None
    assert env.recorder.of("started")[0].dry_run
    assert env.recorder.of("changed") == []


def test_progress_is_reported(env):
    events: list[Progress] = []
    env.sync(progress=events.append)
    phases = [e.phase for e in events]
    assert phases.index("pull_contacts") < phases.index("pull_purchases") < phases.index("apply")
    assert events[-1].done == events[-1].total


def test_memberships_inline_need_no_member_reads(tmp_path):
    env = Env(tmp_path, platform_cls=FakeInlinePlatform)
    env.sync()
    env.crm.lists[next(iter(env.crm.lists))].members.add("100")  # a stray member
    second = env.sync()
    assert env.crm.count("lists.members") == 0
    assert second.report.members_removed == 1
    env.store.close()


def test_dynamic_lists_cost_no_membership_calls(tmp_path):
    env = Env(tmp_path, FakeSettings(dynamic_lists=True, write_batch=3, membership_batch=2))
    result = env.sync()
    assert all(lst.dynamic for lst in env.crm.lists.values())
    assert env.crm.count("lists.add") == 0
    assert result.report.members_added == 0
    assert env.crm.snapshot()["lists"]["segsync · Repeat"] == ["102", "108", "111"]
    env.store.close()


# -- hooks ----------------------------------------------------------------------------------


def test_hooks_fire_in_order_and_segment_changes_after_their_write(env):
    written_when_fired: list[str] = []

    class Peek:
        @hookimpl
        def segment_changed(self, change):
            written_when_fired.append(env.values(change.contact_id).get("segsync_tier", ""))

    env.hooks.pm.register(Peek())
    env.sync()
    kinds = [k for k, _ in env.recorder.events]
    assert kinds[0] == "started"
    assert kinds[-1] == "finished"
    changes = env.recorder.of("changed")
    assert sorted(c.contact_id for c in changes) == ["101", "102", "104", "107", "108", "110", "111"]
    assert all(c.old is None and c.new in ("new", "repeat") and c.platform == "fake" for c in changes)
    assert written_when_fired == [c.new for c in changes], "fired only once the value is in the CRM"
    env.sync()
    assert len(env.recorder.of("changed")) == 7, "no change, no event"


def test_a_failing_plugin_hook_does_not_fail_the_sync(env):
    class Broken:
        @hookimpl
        def segment_changed(self, change):
            raise RuntimeError("plugin bug")

    env.hooks.pm.register(Broken())
    assert env.sync().report.status == "succeeded"


def test_sync_finished_fires_on_failure_with_the_report(env):
    env.crm.secret = "rotated"
    with pytest.raises(AuthError):
        env.sync()
    (report,) = env.recorder.of("finished")
    assert report.status == "failed"
    assert "SEGSYNC_FAKE_TOKEN" in report.error


# -- failures -------------------------------------------------------------------------------


def test_auth_errors_stop_at_once_with_one_message_and_release_the_lock(env):
    env.crm.secret = "rotated"
    with pytest.raises(AuthError) as err:
        env.sync()
    assert env.runner.stats.retries == 0
    job = env.store.recent_jobs(1)[0]
    assert job.status == "failed"
    assert job.error == str(err.value)
    assert env.store.lock_holder("fake", ACCOUNT) is None


def test_missing_scopes_are_named(env):
    env.crm.scopes = {"crm.read"}
    with pytest.raises(PermissionDenied, match="missing scopes: crm.write"):
        env.sync()
    assert env.store.recent_jobs(1)[0].status == "failed"


def test_a_contact_deleted_before_the_write_fails_alone(env):
    env.crm.before("contacts.update", lambda crm: crm.delete_contact("102"))
    result = env.sync()
    assert result.report.status == "succeeded"
    assert result.report.failed_records == 2  # its field write and its list add
    assert result.report.contacts_written == 6
    failures = {(f.kind, f.record_id, f.operation) for f in env.store.failures()}
    assert failures == {("write", "102", "fields"), ("membership", "102", "list:tier.repeat")}
    assert all("102" not in c.contact_id for c in env.recorder.of("changed"))
    env.sync()
    assert env.store.failures() == [], "a contact that is gone is not retried"


def invalid_tier(contacts, purchases, as_of):
    d = tiers(contacts, purchases, as_of)
    values = {cid: dict(v) for cid, v in d.values.items()}
    values["102"]["segsync_tier"] = "platinum"  # not an option: the CRM refuses this record
    return Desired(d.fields, d.lists, values, d.members, d.changes, d.rejections)


def test_failed_records_are_retried_then_parked_then_retried_on_request(env):
    spec = SyncSpec(FIELDS, LISTS, ("email",), invalid_tier)
    for run in range(1, 4):
        result = env.sync(spec)
        assert result.report.failed_records == 1
        (failure,) = env.store.failures()
        assert (failure.record_id, failure.attempts, failure.given_up) == ("102", run, run == 3)
        assert "SEGSYNC_TIER" in failure.reason
    parked = env.sync(spec)
    assert parked.plan is not None
    assert parked.plan.summary.held_back == 1
    assert parked.report.write_calls == 0
    again = env.sync(spec, retry_failed=True)
    assert again.report.failed_records == 1
    assert env.store.failures()[0].attempts == 1


def test_how_many_failed_runs_park_a_record_is_a_retry_setting(env):
    env.runner.policy = RetryPolicy(max_failed_runs=1)
    env.sync(SyncSpec(FIELDS, LISTS, ("email",), invalid_tier))
    (failure,) = env.store.failures()
    assert failure.given_up


def test_a_batch_refused_whole_is_split_to_find_the_bad_record(env, monkeypatch):
    real = FakePlatform.write_fields

    def picky(self, updates):
        if any(u.contact_id == "107" for u in updates):
            raise PermanentError(
                "400 one input is invalid", platform="fake", operation="contacts.update", status=400
            )
        return real(self, updates)

    monkeypatch.setattr(FakePlatform, "write_fields", picky)
    result = env.sync()
    assert result.report.contacts_written == 6
    assert [f.record_id for f in env.store.failures()] == ["107"]


def test_a_batch_refused_for_every_record_stops_the_job_and_never_blocks_forever(env, monkeypatch):
    def broken(self, updates):
        raise PermanentError(
            "400 unknown body shape", platform="fake", operation="contacts.update", status=400
        )

    monkeypatch.setattr(FakePlatform, "write_fields", broken)
    for _ in range(3):
        with pytest.raises(PermanentError, match="unknown body shape"):
            env.sync()
    assert env.store.recent_jobs(1)[0].status == "failed"
    parked = env.store.failures(given_up=True)
    assert len(parked) == 3, "the first batch's records counted three failed runs"
    with pytest.raises(PermanentError):
        env.sync()
    assert env.store.recent_jobs(1)[0].report.failed_records == 3, "the next run got past them"


def test_a_list_deleted_just_before_its_members_are_added_is_rebuilt(env):
    def delete_new_list(crm):
        crm.delete_list(env.store.remote_ids("fake", ACCOUNT, "list")["tier.new"][0])

    env.crm.before("lists.add", delete_new_list)
    result = env.sync()
    assert result.report.lists_created == 3
    assert env.crm.snapshot()["lists"]["segsync · New"] == ["101", "104", "107", "110"]
    assert env.crm.count("lists.get") == 1, "one look at the list, no splitting of a doomed batch"
    assert env.store.failures() == []


def test_rate_limits_are_waited_out_as_the_crm_asks(env):
    env.crm.set_faults(FaultPlan(script=["429", "429"], retry_after=2, path_pattern="contacts.update"))
    result = env.sync()
    assert result.report.status == "succeeded"
    assert result.report.rate_limited == 2
    assert env.clock.sleeps.count(2.0) >= 2
    job = env.store.job(result.report.job.job_id)
    assert (job.rate_limited, job.retries) == (2, 2)


# -- pauses, locks, kills ------------------------------------------------------------------


def test_a_spent_hourly_budget_pauses_and_the_next_run_resumes(tmp_path):
    env = Env(tmp_path, FakeSettings(write_batch=3, membership_batch=2, page_size=5, other_per_hour=8))
    env.runner.policy = RetryPolicy(max_rate_wait=60)
    with pytest.raises(SyncPaused) as err:
        env.sync()
    paused = env.store.recent_jobs(1)[0]
    assert paused.status == "paused"
    assert paused.report is not None
    assert paused.report.resume_after_seconds == pytest.approx(err.value.resume_after)
    assert env.store.lock_holder("fake", ACCOUNT) is None
    assert env.recorder.of("finished")[-1].status == "paused"
    for _ in range(5):
        env.clock.advance(3600)
        try:
            result = env.sync()
            break
        except SyncPaused:
            continue
    assert result.report.status == "succeeded"
    assert result.report.job.resumed_from is not None
    reference = Env(tmp_path / "ref")
    reference.sync()
    assert env.crm.snapshot() == reference.crm.snapshot()
    env.store.close()
    reference.store.close()


def test_a_plan_says_how_long_the_hourly_budget_makes_the_sync(tmp_path):
    env = Env(tmp_path, FakeSettings(write_batch=3, membership_batch=2, page_size=5, other_per_hour=6))
    plan = env.sync(dry_run=True).plan
    assert plan is not None
    assert plan.summary.bottleneck == "other"
    assert plan.summary.min_seconds >= 3600
    assert "takes at least" in plan.describe()[-1]
    env.store.close()


def test_a_live_job_locks_the_account(env, tmp_path):
    env.store.acquire_lock("fake", ACCOUNT)
    with (
        StateStore(
            env.path, wall_clock=env.wall, owner=LockOwner(4242, env.store.owner.host), alive=None
        ) as other,
        pytest.raises(JobLocked),
    ):
        run_sync(env.platform, SPEC, store=other, account=ACCOUNT, as_of=AS_OF)


def test_ctrl_c_marks_the_job_interrupted_and_releases_the_lock(env):
    def interrupt(event: Progress) -> None:
        if event.phase == "apply":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        env.sync(progress=interrupt)
    job = env.store.recent_jobs(1)[0]
    assert job.status == "interrupted"
    assert job.error == "interrupted (Ctrl-C); the next sync resumes it"  # not "internal error"
    assert env.store.lock_holder("fake", ACCOUNT) is None
    assert env.sync().report.job.resumed_from == job.id


def test_a_killed_job_is_marked_interrupted_by_the_next_run(env):
    class Kill(BaseException):
        pass

    def die(event: Progress) -> None:
        if event.phase == "apply":
            raise Kill

    with pytest.raises(Kill):
        env.sync(progress=die)
    killed = env.store.recent_jobs(1)[0]
    assert killed.status == "running"
    holder = env.store.lock_holder("fake", ACCOUNT)
    assert holder is not None
    assert holder.job_id == killed.id
    host = env.store.owner.host
    with StateStore(env.path, wall_clock=env.wall, owner=LockOwner(777, host), alive={777}) as next_process:
        result = run_sync(env.platform, SPEC, store=next_process, account=ACCOUNT, as_of=AS_OF)
        assert result.report.job.resumed_from == killed.id
        assert next_process.job(killed.id).status == "interrupted"


# -- the CRM changed behind segsync's back -----------------------------------------------------


def test_a_deleted_list_is_recreated_and_a_renamed_one_kept(env):
    env.sync()
    ids = env.store.remote_ids("fake", ACCOUNT, "list")
    new_id, repeat_id = ids["tier.new"][0], ids["tier.repeat"][0]
    env.crm.delete_list(new_id)
    env.crm.lists[repeat_id].name = "Our best buyers"  # renamed by a CRM user
    result = env.sync()
    assert result.report.lists_created == 1
    assert env.store.remote_ids("fake", ACCOUNT, "list")["tier.new"][0] != new_id
    assert env.store.remote_ids("fake", ACCOUNT, "list")["tier.repeat"] == (repeat_id, "Our best buyers")
    snap = env.crm.snapshot()
    assert snap["lists"]["segsync · New"] == ["101", "104", "107", "110"]
    assert sorted(snap["list_names"]) == ["Our best buyers", "segsync · New"]


def test_a_user_list_with_the_same_name_is_adopted_not_duplicated(env):
    env.crm.add_user_list("SEGSYNC · NEW")
    env.sync()
    assert len([lst for lst in env.crm.lists.values() if lst.name.casefold() == "segsync · new"]) == 1


def test_a_deleted_field_is_recreated(env):
    env.sync()
    env.crm.delete_field("SEGSYNC_SPENT")
    result = env.sync()
    assert result.report.fields_created == 1
    assert env.values("102")["segsync_spent"] == "25.00"


def test_a_field_whose_type_a_user_changed_is_reported_not_overwritten(env):
    env.sync()
    env.crm.change_field_type("SEGSYNC_SPENT", "text")
    env.crm.contacts["102"].values["SEGSYNC_SPENT"] = "big spender"
    env.crm.add_purchase("102", Decimal("5.00"), dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC))
    result = env.sync()
    assert result.plan is not None
    (conflict,) = result.plan.of_type(FieldConflict)
    assert conflict.spec.key == "segsync_spent"
    assert result.report.conflicts == [
        "segsync_spent: SEGSYNC_SPENT is a text field in the CRM; segsync needs a float field"
    ]
    assert env.crm.contacts["102"].values["SEGSYNC_SPENT"] == "big spender"
    assert env.values("102")["segsync_orders"] == "3", "the other fields are still written"


def test_new_segment_options_are_added_to_the_field(env):
    env.sync()
    env.crm.fields["SEGSYNC_TIER"].options = ["new"]
    result = env.sync()
    assert result.plan is not None
    assert len(result.plan.of_type(UpdateFieldOptions)) == 1
    assert env.crm.fields["SEGSYNC_TIER"].options == ["new", "repeat"]


# -- purchases -------------------------------------------------------------------------------


def test_purchases_are_pulled_incrementally_and_retractions_applied(env):
    env.sync()
    pages_before = env.crm.count("deals.page")
    env.crm.add_purchase("100", Decimal("9.99"), dt.datetime(2026, 1, 12, 12, tzinfo=dt.UTC))
    env.crm.set_deal_stage("D8-1", "lost")  # 108 now has one order
    result = env.sync()
    assert result.report.purchases_pulled <= 3, "only changes since the cursor (plus the overlap)"
    assert env.crm.count("deals.page") - pages_before == 1
    assert env.values("100")["segsync_tier"] == "new"
    assert env.values("108")["segsync_orders"] == "1"
    assert env.values("108")["segsync_tier"] == "new"


def test_a_dry_run_pulls_into_a_copy_of_the_ledger_and_leaves_the_real_one_alone(env):
    assert env.sync().desired.values["100"]["segsync_orders"] is None
    cursor = env.store.cursor("fake", ACCOUNT)
    before = env.store.purchases("fake", ACCOUNT)
    chunks = env.store.ledger_counts("fake", ACCOUNT)
    env.clock.advance(60)
    env.crm.add_purchase("100", Decimal("9.99"), dt.datetime(2026, 1, 12, 12, tzinfo=dt.UTC))
    plan = env.sync(dry_run=True)
    assert plan.desired.values["100"]["segsync_orders"] == 1, "the plan counts the new purchase"
    assert env.store.purchases("fake", ACCOUNT) == before
    assert env.store.cursor("fake", ACCOUNT) == cursor
    assert env.store.ledger_counts("fake", ACCOUNT) == chunks
    assert env.sync().report.purchases_pulled >= 1, "the real sync still pulls it"


def test_a_full_pull_comes_back_every_full_every(env, caplog):
    week = dt.timedelta(days=7)
    everything = env.sync(full_every=week).report.purchases_pulled  # the first pull is full
    assert everything >= 11
    env.clock.advance(6 * 86_400)
    assert env.sync(full_every=week).report.purchases_pulled <= 1, "incremental within the week"
    env.store.save_purchases("fake", ACCOUNT, [], ["D2-1"], replace_all=False, cursor=None)  # lost
    env.clock.advance(2 * 86_400)
    with caplog.at_level(logging.INFO, logger="segsync.engine"):
        again = env.sync(full_every=week)
    assert again.report.purchases_pulled == everything, "eight days after the last full pull: all again"
    assert "D2-1" in {p.id for p in env.store.purchases("fake", ACCOUNT)}, "the full pull repaired it"
    assert "the last full purchase pull was 8 days ago" in caplog.text
    assert env.sync(full_every=week).report.purchases_pulled <= 1
    assert env.sync(full_every=None).report.purchases_pulled <= 1


def test_full_ignores_the_cursor_and_rebuilds_the_cache(env):
    env.sync()
    env.crm.delete_deal("D2-0")  # a deletion the incremental pull reports as a retraction
    env.store.save_purchases("fake", ACCOUNT, [], ["D2-1"], replace_all=False, cursor=None)  # a damaged cache
    result = env.sync(full=True)
    assert result.report.purchases_pulled == 11
    assert {p.id for p in env.store.purchases("fake", ACCOUNT)} >= {"D2-1"}
    assert "D2-0" not in {p.id for p in env.store.purchases("fake", ACCOUNT)}


def test_a_pull_cut_short_keeps_the_chunks_it_saved(tmp_path):
    env = Env(tmp_path, FakeSettings(write_batch=3, membership_batch=2, page_size=2, other_per_hour=4))
    env.runner.policy = RetryPolicy(max_rate_wait=60)
    with pytest.raises(SyncPaused):
        env.sync(purchase_chunk=2)
    kept = env.store.purchases("fake", ACCOUNT)
    assert kept, "pages pulled before the pause are cached"
    assert env.store.cursor("fake", ACCOUNT) is not None
    env.clock.advance(3600)
    pages_before = env.crm.count("deals.page")
    with pytest.raises(SyncPaused):
        env.sync(purchase_chunk=2)
    assert env.crm.count("deals.page") - pages_before <= 4, "resumed after the cached pages"
    for _ in range(10):
        env.clock.advance(3600)
        try:
            env.sync(purchase_chunk=2)
            break
        except SyncPaused:
            continue
    assert len(env.store.purchases("fake", ACCOUNT)) == 12
    env.store.close()


# -- connecting from segsync.toml, and the real computation ------------------------------------


def fake_registry():
    import segsync.testing.fake
    from segsync.plugins.manager import build_registry

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(segsync.testing.fake, name="segsync.testing.fake")
    return build_registry(pm)


def project(tmp_path, **platform):
    from segsync.project.config import ProjectConfig

    table = {"crm": "engine-test", "write_batch": 4, **platform}
    return ProjectConfig(path=tmp_path / "segsync.toml", platforms={"fake": table})


TOKEN = "tok-3b6f0e9d"


def test_connect_builds_the_platform_from_config_and_env(tmp_path):
    from segsync.project.connect import connect

    crm = FakeCRM(secret=TOKEN).register("engine-test")
    clock = FakeClock()
    env = {"SEGSYNC_FAKE_TOKEN": TOKEN, "SEGSYNC_FAKE_BASE_URL": "http://127.0.0.1:9/v3"}
    platform = connect(project(tmp_path), "fake", registry=fake_registry(), env=env, clock=clock)
    assert isinstance(platform, FakePlatform)
    assert platform.crm is crm
    assert platform.settings.base_url == "http://127.0.0.1:9/v3"
    assert platform.limits.write_batch == 4
    assert platform.runner.clock is clock
    assert platform.runner.budget_windows("other")[0].seconds == 3600


def test_connect_without_the_secret_names_the_variable(tmp_path):
    from segsync.errors import ConfigError
    from segsync.project.connect import connect

    with pytest.raises(ConfigError, match="set SEGSYNC_FAKE_TOKEN"):
        connect(project(tmp_path), "fake", registry=fake_registry(), env={"SEGSYNC_FAKE_TOKEN": "  "})


def test_bad_platform_settings_name_the_table(tmp_path):
    from segsync.errors import ConfigError
    from segsync.project.connect import connect

    with pytest.raises(ConfigError, match=r"\[platforms.fake\]: write_btch: unknown key") as err:
        connect(
            project(tmp_path, write_btch=3),
            "fake",
            registry=fake_registry(),
            env={"SEGSYNC_FAKE_TOKEN": TOKEN},
        )
    assert "write_batch" in str(err.value)


def test_account_key_is_what_the_crm_says_never_the_host_or_the_credential(tmp_path):
    from segsync.project.connect import connect
    from segsync.sync.connect import account_key

    env = {"SEGSYNC_FAKE_TOKEN": TOKEN, "SEGSYNC_FAKE_BASE_URL": "http://127.0.0.1:9/v3"}
    crm = FakeCRM(secret=TOKEN).register("engine-test")
    platform = connect(project(tmp_path), "fake", registry=fake_registry(), env=env)
    key = account_key(platform)
    assert key == f"fake:{crm.account_id}"
    assert key.startswith("fake:")
    assert TOKEN not in key
    assert "127.0.0.1" not in key
    # Same host, another token: another account.
    crm = FakeCRM(secret="tok-other").register("engine-test")
    other = connect(
        project(tmp_path), "fake", registry=fake_registry(), env={**env, "SEGSYNC_FAKE_TOKEN": "tok-other"}
    )
    assert account_key(other) != key
    # An explicit account id is reported as is.
    crm = FakeCRM(secret=TOKEN, account_id="acct-42").register("engine-test")
    assert (
        account_key(connect(project(tmp_path), "fake", registry=fake_registry(), env=env)) == "fake:acct-42"
    )


def test_an_unusable_account_id_stops_before_anything_is_read(tmp_path):
    from segsync.errors import PlatformError
    from segsync.project.connect import connect
    from segsync.sync.connect import account_key

    crm = FakeCRM(secret=TOKEN, account_id="no spaces allowed").register("engine-test")
    platform = connect(project(tmp_path), "fake", registry=fake_registry(), env={"SEGSYNC_FAKE_TOKEN": TOKEN})
    with pytest.raises(PlatformError, match="no usable account id"):
        account_key(platform)
    assert crm.count("account.id") == 1


def test_another_account_on_the_same_host_reuses_nothing_remembered(tmp_path, caplog):
    """Token switched to another account: its own lists are never touched through ids
    remembered for the first, and purchases cached for the first are never counted."""
    from segsync.project.run import sync_project
    from segsync.sync.state import StateStore

    clock = FakeClock()
    config = project(tmp_path)
    kw = {"registry": fake_registry(), "as_of": AS_OF, "clock": clock, "wall_clock": FakeWallClock(clock)}
    first = FakeCRM(secret=TOKEN, clock=clock).register("engine-test")
    first.seed(seed_data())
    sync_project(config, "fake", env={"SEGSYNC_FAKE_TOKEN": TOKEN}, **kw)

    second = FakeCRM(secret="tok-second", clock=clock).register("engine-test")
    second.seed(SeedData(contacts=seed_data().contacts[:3], purchases=[]))
    # The second account's own lists carry the ids the first account's segsync lists had.
    own = [second.add_user_list(f"Newsletter {i}") for i in range(len(first.lists))]
    assert set(own) <= set(first.lists)
    for lid in own:
        second.lists[lid].members.update(c.id for c in seed_data().contacts[:2])
    before = {lid: set(second.members(second.lists[lid])) for lid in own}
    sync_project(config, "fake", env={"SEGSYNC_FAKE_TOKEN": "tok-second"}, **kw)
    assert {lid: set(second.members(second.lists[lid])) for lid in own} == before
    assert "first sync of account fake:" in caplog.text
    assert "kept apart" in caplog.text
    # No purchase of the first account was counted for the second's contacts.
    fields = second.snapshot()["fields"]
    assert fields
    assert all(v.get("segsync_rfm_order_count", "0") == "0" for v in fields.values())
    with StateStore(config.state_path) as store:
        assert store.accounts("fake") == {f"fake:{first.account_id}", f"fake:{second.account_id}"}
        assert store.purchases("fake", f"fake:{second.account_id}") == []


def test_sync_project_end_to_end_with_the_standard_pack(tmp_path):
    from segsync.project.run import sync_project
    from segsync.sandbox import demo_dataset

    clock = FakeClock()
    crm = FakeCRM(secret=TOKEN, clock=clock).register("engine-test")
    crm.seed(demo_dataset(AS_OF, contacts=40))
    config = project(tmp_path)
    registry = fake_registry()
    recorder = Recorder()
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(recorder)
    kw = {"registry": registry, "as_of": AS_OF, "env": {"SEGSYNC_FAKE_TOKEN": TOKEN}, "clock": clock}
    first = sync_project(config, "fake", hooks=Hooks(pm), wall_clock=FakeWallClock(clock), **kw)
    assert first.report.status == "succeeded"
    assert first.desired is not None
    assert len(recorder.of("changed")) == len(first.desired.changes) > 0
    snap = crm.snapshot()
    assert "segsync_rfm_segment" in snap["field_defs"]
    assert any(snap["lists"].values())
    second = sync_project(config, "fake", **kw)
    assert second.plan is not None
    assert not second.plan.writes_anything
    for stored in config.state_path.parent.iterdir():  # the database and any WAL/SHM files
        assert TOKEN.encode() not in stored.read_bytes(), f"a secret reached {stored.name}"
    with StateStore(config.state_path) as store:
        assert [j.status for j in store.recent_jobs()] == ["succeeded", "succeeded"]


def test_deleting_the_state_file_costs_a_full_resync_never_wrong_data(env):
    env.sync()
    before = env.crm.snapshot()
    env.store.close()
    for leftover in env.path.parent.glob("state.db*"):
        leftover.unlink()
    env.store = StateStore(env.path, wall_clock=env.wall)
    pages_before = env.crm.count("deals.page")
    result = env.sync()
    assert result.report.purchases_pulled == 12, "no cursor: every purchase is pulled again"
    assert env.crm.count("deals.page") - pages_before == 3
    assert result.plan is not None
    assert not result.plan.writes_anything, "lists are found again by name, values compared with the CRM"
    assert env.crm.snapshot() == before
    assert set(env.store.remote_ids("fake", ACCOUNT, "list")) == {"tier.new", "tier.repeat"}


def test_a_cursor_saved_mid_pull_is_taken_back_when_the_order_breaks(env, monkeypatch):
    base = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

    def unordered(self, since):
        for n, second in enumerate([1, 2, 3, 0]):
            yield Purchase(
                id=f"P{n}",
                contact_id="101",
                amount=Decimal(1),
                closed_at=base,
                modified_at=base + dt.timedelta(seconds=second),
            )
        raise SyncPaused("budget spent", resume_after=60)

    monkeypatch.setattr(FakePlatform, "iter_purchases", unordered)
    with pytest.raises(SyncPaused):
        env.sync(purchase_chunk=2)
    assert env.store.cursor("fake", ACCOUNT) is None, "the next pull must start over, not skip P3"
    assert {p.id for p in env.store.purchases("fake", ACCOUNT)} == {"P0", "P1"}


def test_an_as_of_before_the_first_purchase_is_refused_unless_forced(env):
    """Regression (issue 7.7): as_of = 1800-01-01 was accepted and emptied every list."""
    from segsync.errors import ConfigError

    early = dt.date(1800, 1, 1)
    with pytest.raises(ConfigError, match="before this account's first purchase") as err:
        run_sync(env.platform, SPEC, store=env.store, account=ACCOUNT, as_of=early)
    assert "--force-as-of" in str(err.value)
    assert env.crm.value_changes == 0
    assert env.store.recent_jobs(1)[0].status == "failed"
    forced = run_sync(env.platform, SPEC, store=env.store, account=ACCOUNT, as_of=early, force_as_of=True)
    assert forced.report.status == "succeeded"
