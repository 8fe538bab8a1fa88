"""End to end through brevo-python 5.1.0 against the sandbox over loopback HTTP.

Everything here runs on the ``sandbox`` fixture; requests Brevo refuses on purpose go to
``quiet_sandbox``. Spec conformance is checked by ``test_spec_conformance.py`` on traffic of its own.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest
from pydantic import SecretStr

from segsync import (
    AuthError,
    CallRunner,
    ConfigError,
    ConflictError,
    Contact,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    ListSpec,
    PermanentError,
    Purchase,
    PurchaseRetracted,
    Rejection,
    RetryPolicy,
    SyncPaused,
    TransientError,
)
from segsync.sandbox import FaultPlan
from segsync.sync.platform import PlatformSettings
from segsync_brevo.config import BrevoSettings
from segsync_brevo.platform import BrevoPlatform

from .conftest import KEY, connect

SEGMENT = FieldSpec(
    key="segsync_rfm_segment",
    label="Segment",
    type="enumeration",
    options=(
        FieldOption(value="champions", label="Champions"),
        FieldOption(value="at_risk", label="At risk"),
    ),
)
REVENUE = FieldSpec(key="segsync_revenue", label="Revenue", type="number")
LAST = FieldSpec(key="segsync_last_purchase", label="Last purchase", type="date")
SCORE = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
FIELDS = (SEGMENT, REVENUE, LAST, SCORE)
PROPS = ["email", "firstname", "country", "age", "createdate"]


def pull(platform, managed=(), lists=None, **kw) -> dict[str, Contact]:
    out: dict[str, Contact] = {}
    for rec in platform.iter_contacts(PROPS, managed, lists or {}, **kw):
        assert isinstance(rec, Contact)
        assert rec.id not in out
        out[rec.id] = rec
    return out


def with_email(contacts: dict[str, Contact]) -> list[Contact]:
    return [c for c in contacts.values() if c.email]


# -- check, auth, reachability ------------------------------------------------------------------


def test_check_notes_the_key_the_budget_and_the_won_stages(platform):
    notes = platform.check()
    assert notes[0].startswith("API key accepted")
    assert "100/hour" in notes[1]
    assert "Sales pipeline / Won" in notes[2]


def test_check_in_orders_mode(sandbox, clock):
    notes = connect(sandbox, clock, purchases="orders").check()
    assert "orders with status completed" in notes[-1]


def test_unknown_won_stage_names_the_stages_there_are(sandbox, clock):
    platform = connect(sandbox, clock, won_stages=("Closed won",))
    with pytest.raises(
        ConfigError, match=r"matches no deal stage; this account's stages are: Lost, New, Won"
    ):
        platform.check()


def test_wrong_key_is_one_auth_error_naming_the_variable(quiet_sandbox, clock):
    platform = connect(quiet_sandbox, clock, key="xkeysib-wrong-0000")
    with pytest.raises(AuthError) as caught:
        platform.check()
    assert "SEGSYNC_BREVO_API_KEY" in str(caught.value)
    assert "xkeysib-wrong" not in str(caught.value)
    assert caught.value.status == 401
    assert platform.runner.stats.retries == 0


def test_missing_key_or_bad_base_url_fail_before_any_call(sandbox, clock):
    runner = CallRunner("brevo", clock=clock)
    with pytest.raises(ConfigError, match="SEGSYNC_BREVO_API_KEY is empty"):
        BrevoPlatform.create(BrevoSettings(base_url=sandbox.base_url), secret=SecretStr(" "), runner=runner)
    with pytest.raises(ConfigError, match="must start with http"):
        BrevoPlatform.create(BrevoSettings(base_url="api.brevo.com/v3"), secret=SecretStr(KEY), runner=runner)
    assert sandbox.server.requests_seen == 0


def test_base_url_falls_back_to_the_environment(sandbox, clock, monkeypatch):
    monkeypatch.setenv("SEGSYNC_BREVO_BASE_URL", sandbox.base_url)
    runner = CallRunner("brevo", clock=clock, buckets=BrevoPlatform.rate_buckets(BrevoSettings()))
    platform = BrevoPlatform.create(BrevoSettings(), secret=SecretStr(KEY), runner=runner)
    assert platform.check()


def test_unreachable_base_url_is_transient_and_waits_on_the_fake_clock(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings = BrevoSettings(base_url=f"http://127.0.0.1:{port}/v3", timeout=2)
    policy = RetryPolicy(max_attempts=3, backoff_initial=1.0)
    runner = CallRunner(
        "brevo",
        policy=policy,
        clock=clock,
        buckets=BrevoPlatform.rate_buckets(settings),
        rng=random.Random(1),
    )
    platform = BrevoPlatform.create(settings, secret=SecretStr(KEY), runner=runner)
    with pytest.raises(TransientError, match=f"127.0.0.1:{port}/v3 failed \\(ConnectError\\)"):
        platform.check()
    assert runner.stats.calls == 3
    assert runner.stats.retries == 2
    assert len([s for s in clock.sleeps if s > 0]) == 2


def test_oauth_client_credentials_in_the_environment_are_ignored(sandbox):
    """brevo-python defaults client_id/client_secret from the environment and would switch to
    OAuth (a token call first). Fresh interpreter: the SDK reads them at import time."""
    script = textwrap.dedent(
        f"""
        from pydantic import SecretStr
        from segsync import CallRunner
        from segsync_brevo.config import BrevoSettings
        from segsync_brevo.platform import BrevoPlatform
        settings = BrevoSettings(base_url={sandbox.base_url!r})
        platform = BrevoPlatform.create(settings, secret=SecretStr({KEY!r}), runner=CallRunner("brevo"))
        print(platform.check()[0])
        """
    )
    env = {**os.environ, "BREVO_CLIENT_ID": "client-123", "BREVO_CLIENT_SECRET": "secret-456"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("API key accepted")
    assert sandbox.foreign_calls == 0, "an OAuth token call was made"


# -- contacts ----------------------------------------------------------------------------------


def test_contacts_page_with_overlap_and_filter_by_modification(sandbox, clock, seed_data):
    platform = connect(sandbox, clock, contacts_page=25)
    contacts = pull(platform)
    assert set(contacts) == {c.id for c in seed_data.contacts}
    assert platform.runner.stats.per_operation["contacts.list"] == 3
    seeded = next(c for c in seed_data.contacts if c.id == "1002")
    got = contacts["1002"]
    assert (got.email, got.properties["firstname"], got.properties["country"]) == (
        seeded.email,
        seeded.firstname,
        seeded.country,
    )
    assert got.properties["age"] == (seeded.age or None)
    assert "contacts" not in platform.resume_tokens, "a finished pull leaves no resume token"

    clock.advance(600)
    since = sandbox.now() - dt.timedelta(seconds=1)
    lst = platform.create_list(ListSpec(key="vip", name="segsync · VIP"), dynamic=False)
    assert set(platform.add_members(lst.id, ["1003", "1007"]).ok) == {"1003", "1007"}
    # adding to a list changes modifiedAt on Brevo: an incremental pull sees them, with the list
    changed = pull(platform, lists={"vip": lst.id}, modified_since=since)
    assert set(changed) == {"1003", "1007"}
    assert all(c.lists == frozenset({"vip"}) for c in changed.values())


def test_a_paused_contacts_pull_resumes_from_its_token(sandbox, clock, seed_data):
    # 10 calls a second; pages of 5: the eleventh call would wait, longer than allowed
    policy = RetryPolicy(max_rate_wait=0.5)
    platform = connect(sandbox, clock, policy=policy, contacts_page=5)
    seen: list[str] = []
    pulling = platform.iter_contacts(["email"], [], {})
    with pytest.raises(SyncPaused):
        seen.extend(rec.id for rec in pulling)
    token = platform.resume_tokens["contacts"]
    assert len(seen) == 5 + 8 * 4, "one attribute read, then nine pages"
    assert token == f"{len(seen)}:{seen[-1]}"
    clock.advance(2)
    again = connect(sandbox, clock)
    rest = [rec.id for rec in again.iter_contacts(["email"], [], {}, resume=token)]
    assert sorted(seen + rest) == sorted(c.id for c in seed_data.contacts)
    assert not set(seen) & set(rest)


# -- purchases ---------------------------------------------------------------------------------


def _good_won(seed_data):
    return [
        d
        for d in seed_data.purchases
        if d.stage == "won" and d.contact_id and d.closedate and d.amount.replace(".", "", 1).isdigit()
    ]


def test_won_deals_with_pipelines_and_the_attribute_catalogue(platform, seed_data):
    records = list(platform.iter_purchases(None))
    purchases = [r for r in records if isinstance(r, Purchase)]
    rejected = [r for r in records if isinstance(r, Rejection)]
    assert not [r for r in records if isinstance(r, PurchaseRetracted)], "a full pull retracts nothing"
    assert sorted((p.id, p.contact_id, p.amount) for p in purchases) == sorted(
        (d.deal_id, d.contact_id, Decimal(d.amount)) for d in _good_won(seed_data)
    )
    eur = [p for p in purchases if p.currency == "EUR"]
    assert len(eur) == 1, "the deal_currency attribute is read"
    reasons = sorted(r.reason for r in rejected)
    assert any("no amount" in r for r in reasons)
    assert any("is not a number" in r for r in reasons)
    assert any("no close date (close_date)" in r for r in reasons)
    assert any("linked to no contact" in r for r in reasons)
    ops = platform.runner.stats.per_operation
    assert (ops["pipelines.list"], ops["deal_attributes.list"]) == (1, 1)
    assert platform.runner.stats.per_bucket["contacts"] == 0, "deals cost only the hourly bucket"
    stamps = [p.modified_at for p in purchases]
    assert stamps == sorted(stamps), "oldest change first, so the engine can checkpoint the pull"


def test_incremental_pull_sees_new_and_unwon_deals(platform, sandbox, clock, seed_data):
    first = [r for r in platform.iter_purchases(None) if isinstance(r, Purchase)]
    since = max(p.modified_at for p in first if p.modified_at) - dt.timedelta(seconds=1)
    clock.advance(3600)
    lost = first[0].id
    sandbox.set_deal_stage(lost, "lost")
    new = sandbox.add_purchase("1004", Decimal("42.00"), dt.datetime(2026, 1, 14, 9, tzinfo=dt.UTC))
    changes = list(platform.iter_purchases(since))
    assert PurchaseRetracted(id=lost) in changes
    (added,) = [r for r in changes if isinstance(r, Purchase) and r.id == new]
    assert (added.contact_id, added.amount) == ("1004", Decimal("42.00"))
    assert platform.runner.stats.per_operation["pipelines.list"] == 1, "the pipelines are read once"


def test_a_paused_deals_pull_resumes_where_it_stopped(sandbox, clock, seed_data):
    full = [
        (r.id, r.contact_id) for r in connect(sandbox, clock).iter_purchases(None) if isinstance(r, Purchase)
    ]
    policy = RetryPolicy(max_rate_wait=60)
    rounds: list[list[tuple[str, str]]] = []
    waits: list[float] = []
    token = None
    for _ in range(6):
        clock.advance(3600)
        platform = connect(sandbox, clock, policy=policy, other_per_hour=5)
        got: list[tuple[str, str]] = []
        try:
            for rec in platform.iter_purchases(None, resume=token):
                if isinstance(rec, Purchase):
                    got.append((rec.id, rec.contact_id))
        except SyncPaused as paused:
            waits.append(paused.resume_after)
            token = platform.resume_tokens["purchases"]
            rounds.append(got)
            continue
        rounds.append(got)
        break
    assert len(rounds) >= 2, "the hourly budget paused the pull at least once"
    assert all(w > 60 for w in waits)
    together = [p for r in rounds for p in r]
    assert sorted(together) == sorted(full)


def test_orders_mode_finds_buyers_by_id_or_by_email_with_a_plus(sandbox, clock, seed_data):
    plus = next(c for c in seed_data.contacts if "+" in c.email)
    by_email = sandbox.add_order(plus.email, Decimal("19.90"))
    stranger = sandbox.add_order("nobody+else@example.com", Decimal("5.00"))
    platform = connect(sandbox, clock, purchases="orders", currency="USD")
    records = list(platform.iter_purchases(None))
    purchases = {(r.id, r.contact_id) for r in records if isinstance(r, Purchase)}
    assert (by_email, plus.id) in purchases
    assert any(isinstance(r, Rejection) and r.record_id == stranger for r in records)
    assert {d.contact_id for d in _good_won(seed_data)} <= {c for _, c in purchases}
    assert all(r.currency == "USD" for r in records if isinstance(r, Purchase))
    assert platform.runner.stats.per_operation["contacts.get"] == 2, "one lookup per email, cached"


# -- attributes --------------------------------------------------------------------------------


def test_attributes_are_created_upper_case_and_found_again(platform, sandbox):
    assert all(v is None for v in platform.inspect_fields(FIELDS).values())
    platform.create_fields(FIELDS)
    remote = platform.inspect_fields(FIELDS)
    assert {k: (v.name, v.type, v.group) for k, v in remote.items() if v} == {
        "segsync_rfm_segment": ("SEGSYNC_RFM_SEGMENT", "category", "category"),
        "segsync_revenue": ("SEGSYNC_REVENUE", "float", "normal"),
        "segsync_last_purchase": ("SEGSYNC_LAST_PURCHASE", "date", "normal"),
        "segsync_rfm_score": ("SEGSYNC_RFM_SCORE", "text", "normal"),
    }
    assert remote["segsync_rfm_segment"].options == ("champions", "at_risk")
    creates = platform.runner.stats.per_operation["attributes.create"]
    platform.create_fields(FIELDS)
    assert platform.runner.stats.per_operation["attributes.create"] == creates, "nothing created twice"
    assert sandbox.snapshot()["field_defs"] == sorted(f.key for f in FIELDS)


def test_an_attribute_of_another_type_is_reported_and_never_written(platform, sandbox):
    sandbox.add_attribute("SEGSYNC_REVENUE", "normal", "text")
    remote = platform.inspect_fields([REVENUE])["segsync_revenue"]
    reason = platform.field_matches(REVENUE, remote)
    assert reason
    assert "SEGSYNC_REVENUE" in reason
    assert "type text" in reason
    platform.create_fields([REVENUE])
    assert "attributes.create" not in platform.runner.stats.per_operation
    with pytest.raises(ConflictError):
        platform.write_fields([ContactUpdate(contact_id="1001", values={"segsync_revenue": Decimal(3)})])
    assert "contacts.update" not in platform.runner.stats.per_operation


def test_category_options_grow_with_stable_codes(platform, sandbox):
    platform.create_fields([SEGMENT])
    assert platform.write_fields([ContactUpdate(contact_id="1001", values={SEGMENT.key: "at_risk"})]).ok == (
        "1001",
    )
    grown = SEGMENT.model_copy(
        update={"options": (FieldOption(value="new", label="New customers"), *SEGMENT.options)}
    )
    platform.update_field_options(grown)
    platform.update_field_options(grown)  # already there: no call
    assert platform.runner.stats.per_operation["attributes.update"] == 1
    assert sandbox.contact("1001")["attributes"]["SEGSYNC_RFM_SEGMENT"] == 2, "codes never move"
    assert platform.inspect_fields([grown])[SEGMENT.key].options == ("new", "champions", "at_risk")
    assert pull(platform, [grown])["1001"].managed == {SEGMENT.key: "at_risk"}


def test_a_write_to_a_vanished_attribute_sends_nothing(platform, sandbox):
    platform.create_fields([SCORE])
    with sandbox.server.lock:
        del sandbox.attributes["SEGSYNC_RFM_SCORE"]
    with pytest.raises(PermanentError, match="SEGSYNC_RFM_SCORE does not exist in Brevo"):
        platform.write_fields([ContactUpdate(contact_id="1001", values={SCORE.key: "555"})])
    assert "contacts.update" not in platform.runner.stats.per_operation


# -- lists and memberships -----------------------------------------------------------------------


def test_lists_live_in_the_segsync_folder_and_are_found_by_name_and_id(platform, sandbox):
    other_folder = platform.sdk.contacts.create_folder(name="Marketing")
    mine = platform.sdk.contacts.create_list(folder_id=other_folder.id, name="segsync · Champions")
    created = platform.create_list(ListSpec(key="champions", name="segsync · Champions"), dynamic=False)
    assert created.id != str(mine.id)
    found = platform.find_list("segsync · Champions")
    assert found is not None
    assert found.id == created.id, "the list in segsync's folder wins"
    assert platform.get_list(created.id).name == "segsync · Champions"
    assert platform.get_list("987654") is None
    assert platform.find_list("segsync · Nobody") is None
    with pytest.raises(ConfigError):
        platform.create_list(ListSpec(key="x", name="segsync · X"), dynamic=True)
    with pytest.raises(ConfigError, match="imports into"):
        platform.create_list(ListSpec(key="y", name="segsync · synced contacts"), dynamic=False)
    assert sandbox.snapshot()["list_names"] == ["segsync · Champions"]


def test_a_first_sync_lists_the_accounts_lists_once_for_all_its_segments(sandbox, clock, tmp_path):
    from segsync.testing import StateFile

    platform = connect(sandbox, clock)
    result = StateFile(tmp_path / "state.db", clock=clock).sync(platform, as_of=dt.date(2026, 1, 15))
    ops = platform.runner.stats.per_operation
    created = ops["lists.create"]
    assert created == len(result.desired.lists) + 1  # the segments' lists and the import list
    assert ops["lists.list"] == 1, "one listing serves every lookup; creates keep it current"
    names = sandbox.snapshot()["list_names"]
    assert len(names) == len(set(names)) == created - 1, "no list made twice (the import list aside)"


def test_a_list_create_whose_answer_was_lost_is_found_by_the_next_lookup(platform, sandbox):
    assert platform.find_list("segsync · Champions") is None  # the listing is now cached
    platform.lists.folder()  # made first, so the fault meets the list create
    sandbox.server.set_faults(
        FaultPlan(script=["lost_response"], methods=["POST"], path_pattern=r"^/v3/contacts/lists$")
    )
    with pytest.raises(TransientError), platform.runner.at_most_once():
        platform.create_list(ListSpec(key="champions", name="segsync · Champions"), dynamic=False)
    found = platform.find_list("segsync · Champions")
    assert found is not None, "the lookup listed again: Brevo made the list"
    assert platform.runner.stats.per_operation["lists.list"] == 2


def test_memberships_split_at_150_and_sort_out_refusals(platform, sandbox):
    ids = sorted(pull(platform))
    ids += [sandbox.add_contact(f"extra{i}@example.com") for i in range(260)]
    lst = platform.create_list(ListSpec(key="big", name="segsync · Big"), dynamic=False)
    result = platform.add_members(lst.id, ids)
    assert set(result.ok) == set(ids)
    assert platform.runner.stats.per_operation["lists.add"] == 3
    assert sandbox.list_member_ids(lst.id) == set(ids)
    # Sent again (as after a lost answer): Brevo refuses all as "already in the list"
    again = platform.add_members(lst.id, ids[:150])
    assert set(again.ok) == set(ids[:150])
    assert not again.failed
    assert platform.runner.stats.per_operation["contacts.get"] == 0, "one member read, not 150 lookups"
    sandbox.delete_contact(ids[0])
    partly = platform.add_members(lst.id, [ids[0], "not-an-id"])
    assert {f.record_id: f.reason for f in partly.failed} == {
        ids[0]: "contact no longer exists in Brevo",
        "not-an-id": "not a Brevo contact id",
    }
    removed = platform.remove_members(lst.id, [ids[1], ids[1], ids[0], "not-an-id"])
    assert set(removed.ok) == {ids[1], ids[0], "not-an-id"}, "non-members count as removed"
    assert ids[1] not in sandbox.list_member_ids(lst.id)
    assert set(platform.list_members(lst.id)) == set(ids[2:])


# -- writes ------------------------------------------------------------------------------------


def test_small_writes_go_one_put_each_and_read_back(platform, sandbox):
    platform.create_fields(FIELDS)
    a, b = "1001", "1002"
    values = {
        a: {
            SEGMENT.key: "champions",
            REVENUE.key: Decimal("1234.56"),
            LAST.key: dt.date(2026, 1, 2),
            SCORE.key: "545",
        },
        b: {SEGMENT.key: "at_risk", REVENUE.key: 3, LAST.key: dt.date(2025, 12, 31), SCORE.key: "Café ☕"},
    }
    result = platform.write_fields([ContactUpdate(contact_id=c, values=v) for c, v in values.items()])
    assert set(result.ok) == {a, b}
    assert platform.runner.stats.per_operation["contacts.update"] == 2
    assert "contacts.import" not in platform.runner.stats.per_operation
    got = pull(platform, FIELDS)
    assert {c: dict(got[c].managed) for c in (a, b)} == values
    cleared = platform.write_fields([ContactUpdate(contact_id=a, values=dict.fromkeys(values[a]))])
    assert cleared.ok == (a,)
    assert all(v is None for v in pull(platform, FIELDS)[a].managed.values())
    assert sandbox.contact(a)["attributes"]["FIRSTNAME"], "other attributes are left alone"
    gone = platform.write_fields([ContactUpdate(contact_id="999999", values={SCORE.key: "1"})])
    assert gone.failed[0].reason == "contact no longer exists in Brevo"


def test_large_writes_import_poll_to_completion_and_verify(sandbox, clock):
    platform = connect(sandbox, clock, put_max=5)
    contacts = with_email(pull(platform))[:30]
    platform.create_fields(FIELDS)
    plus = [c for c in contacts if "+" in (c.email or "")]
    assert plus, "the demo store has an address with a '+'"
    updates = [
        ContactUpdate(
            contact_id=c.id,
            email=c.email,
            values={
                SEGMENT.key: "champions" if i % 2 else "at_risk",
                REVENUE.key: Decimal(i) / 4,
                SCORE.key: f"{i}",
            },
        )
        for i, c in enumerate(contacts)
    ]
    sleeps_before = len(clock.sleeps)
    result = platform.write_fields(updates)
    assert set(result.ok) == {c.id for c in contacts}
    ops = platform.runner.stats.per_operation
    assert ops["contacts.import"] == 1
    assert ops["processes.get"] == 3, "queued, in_process, completed"
    later = iter(clock.sleeps[sleeps_before:])
    assert all(any(s == wait for s in later) for wait in (2.0, 4.0, 8.0)), "polls back off on the fake clock"
    (process,) = sandbox.processes.values()
    assert process.done
    assert process.payload["listIds"]
    assert process.payload["updateExistingContacts"] is True
    assert process.payload["emptyContactsAttributes"] is False
    got = pull(platform, FIELDS)
    for i, c in enumerate(contacts):
        assert got[c.id].managed[REVENUE.key] == Decimal(i) / 4
    assert sandbox.snapshot()["list_names"] == [], "the import list is not a segment list"


def test_import_clears_only_what_is_cleared(sandbox, clock):
    platform = connect(sandbox, clock, put_max=0)
    contacts = with_email(pull(platform))[:12]
    platform.create_fields(FIELDS)
    first = [
        ContactUpdate(contact_id=c.id, values={SEGMENT.key: "champions", SCORE.key: "5"}) for c in contacts
    ]
    assert len(platform.write_fields(first).ok) == 12
    # half lose their segment, the other half get a new score: in one call
    mixed = [
        ContactUpdate(contact_id=c.id, values={SEGMENT.key: None} if i % 2 else {SCORE.key: "9"})
        for i, c in enumerate(contacts)
    ]
    assert len(platform.write_fields(mixed).ok) == 12
    got = pull(platform, FIELDS)
    for i, c in enumerate(contacts):
        expected = (
            {SEGMENT.key: None, SCORE.key: "5"} if i % 2 else {SEGMENT.key: "champions", SCORE.key: "9"}
        )
        assert {k: got[c.id].managed[k] for k in expected} == expected
    erasing = [p for p in sandbox.processes.values() if p.payload.get("emptyContactsAttributes")]
    assert len(erasing) == 1
    assert all(set(i["attributes"]) == {"SEGSYNC_RFM_SEGMENT"} for i in erasing[0].payload["jsonBody"])


def test_imports_find_emails_for_updates_that_name_only_an_id(sandbox, clock):
    platform = connect(sandbox, clock, put_max=0)
    platform.create_fields([SCORE])
    updates = [ContactUpdate(contact_id=str(1020 + i), values={SCORE.key: "7"}) for i in range(25)]
    result = platform.write_fields(updates)
    assert set(result.ok) == {u.contact_id for u in updates}
    assert platform.runner.stats.per_operation["contacts.list"] == 2 + 1, "two lookups of 20, one read-back"


def test_an_import_for_a_deleted_contact_undoes_the_contact_it_created(sandbox, clock):
    platform = connect(sandbox, clock, put_max=0)
    contacts = with_email(pull(platform))[:5]
    platform.create_fields([SCORE])
    victim = contacts[2]
    sandbox.delete_contact(victim.id)
    before = len(sandbox.contacts)
    result = platform.write_fields(
        [ContactUpdate(contact_id=c.id, email=c.email, values={SCORE.key: "1"}) for c in contacts]
    )
    assert set(result.ok) == {c.id for c in contacts} - {victim.id}
    (failure,) = result.failed
    assert failure.record_id == victim.id
    assert "segsync deleted again" in failure.reason
    assert victim.email not in failure.reason
    assert len(sandbox.contacts) == before, "no contact was resurrected"
    assert all(c.email != victim.email for c in sandbox.contacts.values())


def test_a_contact_without_email_is_written_by_id(sandbox, clock, seed_data):
    no_email = next(c.id for c in seed_data.contacts if not c.email)
    platform = connect(sandbox, clock, put_max=0)
    platform.create_fields([SCORE])
    result = platform.write_fields(
        [ContactUpdate(contact_id=c, values={SCORE.key: "3"}) for c in (no_email, "1001", "1002")]
    )
    assert set(result.ok) == {no_email, "1001", "1002"}
    assert platform.runner.stats.per_operation["contacts.update"] == 1
    assert sandbox.contact(no_email)["attributes"]["SEGSYNC_RFM_SCORE"] == "3"


def test_call_cost_predicts_a_first_sync_in_hours(platform):
    plan = {
        "pull_contacts": platform.call_cost("pull_contacts", 20_000),
        "pull_purchases": platform.call_cost("pull_purchases", 60_000),
        "write_fields": platform.call_cost("write_fields", 20_000),
        "add_members": platform.call_cost("add_members", 20_000),
    }
    other = sum(c.get("other", 0) for c in plan.values())
    assert plan["pull_purchases"] == {"other": 2 + 1 + (60_000 - 50) // 49 + 1}
    assert plan["write_fields"]["other"] == 2 * 3, "two imports, three polls each"
    assert plan["add_members"] == {"contacts": 134}
    assert other / 100 > 12, "a 60,000-deal account needs over 12 hours of the base tier"
    assert platform.call_cost("write_fields", 100) == {"contacts": 101}
    assert platform.call_cost("add_members", 0) == {}


def test_generic_platform_settings_are_read_as_brevo_settings():
    generic = PlatformSettings(base_url="http://127.0.0.1:1/v3", timeout=3)
    assert BrevoPlatform.rate_buckets(generic)["other"][0].requests == 100


def test_values_are_read_back_when_asked_or_when_brevo_reports_problems(sandbox, clock):
    platform = connect(sandbox, clock, put_max=0, import_readback="always")
    contacts = with_email(pull(platform))[:8]
    platform.create_fields([SCORE])
    updates = [ContactUpdate(contact_id=c.id, email=c.email, values={SCORE.key: "8"}) for c in contacts]
    assert len(platform.write_fields(updates).ok) == 8
    assert platform.runner.stats.per_operation["contacts.list"] == 1 + 2, "one pull, created + modified reads"

    # An address Brevo finds invalid: the report names a file of bad rows, so every value is read back
    usual = connect(sandbox, clock, put_max=0)
    bad = ContactUpdate(contact_id=contacts[0].id, email="not an address", values={SCORE.key: "9"})
    good = ContactUpdate(contact_id=contacts[1].id, email=contacts[1].email, values={SCORE.key: "9"})
    result = usual.write_fields([bad, good])
    assert result.ok == (good.contact_id,)
    assert result.failed[0].record_id == bad.contact_id
    assert "did not store SEGSYNC_RFM_SCORE" in result.failed[0].reason
    assert sandbox.contact(bad.contact_id)["attributes"]["SEGSYNC_RFM_SCORE"] == "8"


def test_refused_adds_are_looked_at_one_by_one_when_the_list_is_long(sandbox, clock):
    platform = connect(sandbox, clock, contacts_page=2)  # reading the members would take 20 pages
    ids = [str(i) for i in range(1000, 1040)]
    lst = platform.create_list(ListSpec(key="long", name="segsync · Long"), dynamic=False)
    assert set(platform.add_members(lst.id, ids).ok) == set(ids)
    reads = platform.runner.stats.per_operation["contacts.list"]
    again = platform.add_members(lst.id, ids[:11])
    assert set(again.ok) == set(ids[:11])
    assert platform.runner.stats.per_operation["contacts.get"] == 11
    assert platform.runner.stats.per_operation["contacts.list"] == reads


def test_deals_closing_later_today_do_not_hold_the_purchase_cursor_in_the_future(clock, tmp_path):
    """Regression: seeded deals closing later today got a last_updated_date after the sandbox's
    now; the incremental cursor then sat past every later change and a new purchase was never
    pulled (the demo's buyer did not move when run just after midnight UTC)."""
    from segsync.sandbox import SeedData
    from segsync.sandbox.seed import SeedContact, SeedPurchase
    from segsync.testing import StateFile
    from segsync_brevo.sandbox import BrevoSandbox

    from .conftest import connect, start_sandbox

    probe = BrevoSandbox(secret="probe", clock=clock)
    now = probe.now()
    later = (now + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - dt.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    contacts = [SeedContact(str(i), f"c{i}@example.com", "Ada", "", "GB", "", "", "", "", "") for i in (1, 2)]
    purchases = [
        SeedPurchase("9001", "1", "100.00", "", earlier, "won"),
        SeedPurchase("9002", "2", "50.00", "", later, "won"),
    ]
    sandbox = start_sandbox(clock, SeedData(contacts, purchases), None)
    try:
        deal = sandbox.state.deals["9002"]
        assert deal.updated <= sandbox.now()
        as_of = (now + dt.timedelta(hours=6)).date()
        state = StateFile(tmp_path / "state.db", clock=clock)
        first = state.sync(connect(sandbox, clock), as_of=as_of)
        assert first.desired is not None
        before = first.desired.values["1"]["segsync_order_count"]
        clock.advance(60)
        sandbox.add_purchase("1", Decimal("480.00"), dt.datetime.combine(as_of, dt.time(0), tzinfo=dt.UTC))
        again = state.sync(connect(sandbox, clock), as_of=as_of)
        assert again.desired is not None
        assert again.desired.values["1"]["segsync_order_count"] == before + 1
        assert again.report.contacts_written >= 1
    finally:
        sandbox.stop()
