"""The real SDK against the sandbox over loopback HTTP (spec conformance: test_spec_conformance.py)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from decimal import Decimal

import pytest

from segsync import (
    AuthError,
    ConflictError,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    ListSpec,
    PermanentError,
    PermissionDenied,
    Purchase,
    Rejection,
    TransientError,
)
from segsync.sandbox import FaultPlan, Request, Response, SeedData
from segsync.sync.runner import RetryPolicy
from segsync.testing import FakeClock
from segsync_hubspot.platform import SCOPES, HubSpotPlatform
from segsync_hubspot.sandbox import HubSpotSandbox

pytestmark = pytest.mark.e2e

SEGMENT = FieldSpec(
    key="segsync_rfm_segment",
    label="RFM segment",
    type="enumeration",
    options=(FieldOption(value="champions", label="Champions"), FieldOption(value="lost", label="Lost")),
)
REVENUE = FieldSpec(key="segsync_revenue", label="Revenue", type="number")
SINCE = FieldSpec(key="segsync_segment_since", label="Segment since", type="date")
SCORE = FieldSpec(key="segsync_rfm_score", label="RFM score", type="string")
FIELDS = (SEGMENT, REVENUE, SINCE, SCORE)
CHAMPIONS = ListSpec(key="champions", name="segsync · Champions")
LOST = ListSpec(key="lost", name="segsync · Lost", filter_field=SEGMENT.key, filter_value="lost")

MakeSandbox = Callable[..., HubSpotSandbox]
MakePlatform = Callable[..., HubSpotPlatform]


def contacts_of(platform: HubSpotPlatform, managed: tuple[FieldSpec, ...] = FIELDS) -> dict[str, object]:
    return {c.id: c for c in platform.iter_contacts(["firstname", "country"], managed, {})}  # type: ignore[union-attr]


# -- pulls ---------------------------------------------------------------------------------


def test_pull_contacts_pages_and_passes_missing_emails(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, demo_data: SeedData
) -> None:
    platform = make_platform(make_sandbox(demo_data))
    got = contacts_of(platform, ())
    assert set(got) == {c.id for c in demo_data.contacts}
    assert platform.runner.stats.per_operation["contacts.list"] == 2, "150 contacts are 2 pages of 100"
    no_email = [c for c in demo_data.contacts if not c.email]
    assert no_email
    assert all(got[c.id].email is None for c in no_email)  # type: ignore[attr-defined]


def test_pull_purchases_maps_and_rejects(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    purchases: dict[str, list[Purchase]] = {}
    rejected: dict[str, str] = {}
    for rec in platform.iter_purchases(None):
        if isinstance(rec, Purchase):
            purchases.setdefault(rec.id, []).append(rec)
        else:
            assert isinstance(rec, Rejection)
            rejected[rec.record_id] = rec.reason
    summary = {k: [(p.contact_id, p.amount, p.currency) for p in v] for k, v in purchases.items()}
    assert summary == {
        "5001": [("100", Decimal("120.50"), "USD")],
        "5002": [("100", Decimal(80), "USD")],
        "5003": [("101", Decimal("99.99"), "USD")],
        "5010": [("106", Decimal(120), "EUR")],
    }
    assert purchases["5003"][0].closed_at == dt.datetime(2025, 6, 30, tzinfo=dt.UTC)
    assert rejected == {
        "5004": "won deal has no amount",
        "5005": "won deal amount 'call me' is not a number",
        "5006": "won deal has no associated contact",
        "5007": "won deal has no close date (closedate)",
    }


def test_won_stages_come_from_pipelines_and_associations_page(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, small_data: SeedData
) -> None:
    sb = make_sandbox(small_data, association_page_size=2)
    for cid in ("101", "102", "107", "108"):
        sb.associate("5001", cid)
    with sb.server.lock:  # custom pipelines: stage ids say nothing, the metadata says won (1002) or lost
        for deal_id, stage in (("6001", "1002"), ("6002", "1003")):
            sb.account.add_deal(
                deal_id,
                ["109"],
                amount="10",
                currency="USD",
                closedate="2025-01-01T00:00:00.000Z",
                stage=stage,
                now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
                pipeline="renewals",
            )
    platform = make_platform(sb)
    purchases = [r for r in platform.iter_purchases(None) if isinstance(r, Purchase)]
    assert sorted(p.contact_id for p in purchases if p.id == "5001") == ["100", "101", "102", "107", "108"]
    assert [p.contact_id for p in purchases if p.id.startswith("600")] == ["109"]
    # one read for all won deals, then one more per remaining page of 5001's five contacts
    assert platform.runner.stats.per_operation["associations.read"] == 3


def test_debug_logging_shows_no_crm_data(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK logs response bodies at DEBUG; its Configuration holds its loggers at WARNING
    # unless ``debug`` is set, which segsync never does.
    with caplog.at_level(logging.DEBUG):
        assert contacts_of(platform)
    assert "@example.com" not in caplog.text
    assert sandbox.secret not in caplog.text


def test_pull_skips_deleted_contacts(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    sandbox.delete_contact("101")
    got = contacts_of(platform)
    assert "101" not in got
    assert got["103"].email is None, "a contact without email is passed on; the core rejects it"  # type: ignore[attr-defined]
    assert all(p.id != "5003" for p in platform.iter_purchases(None) if isinstance(p, Purchase))


# -- fields --------------------------------------------------------------------------------


def test_fields_are_created_once_with_group(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    assert all(v is None for v in platform.inspect_fields(FIELDS).values())
    platform.create_fields(FIELDS)
    remote = platform.inspect_fields(FIELDS)
    assert {k: (v.type, v.group) for k, v in remote.items() if v} == {
        SEGMENT.key: ("enumeration", "segsync"),
        REVENUE.key: ("number", "segsync"),
        SINCE.key: ("date", "segsync"),
        SCORE.key: ("string", "segsync"),
    }
    assert remote[SEGMENT.key].options == ("champions", "lost")  # type: ignore[union-attr]
    platform.create_fields(FIELDS)  # again: HubSpot says they exist (207), and they match
    assert sandbox.snapshot()["field_defs"] == sorted(s.key for s in FIELDS)
    assert platform.runner.stats.per_operation["groups.create"] == 1


def test_a_users_property_of_another_type_is_reported_not_clobbered(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform
) -> None:
    sandbox.add_user_property(REVENUE.key, "string", "text")
    remote = platform.inspect_fields([REVENUE])[REVENUE.key]
    assert remote is not None
    reason = platform.field_matches(REVENUE, remote)
    assert reason
    assert "'string'" in reason
    assert "'number'" in reason
    with pytest.raises(ConflictError, match=REVENUE.key):
        platform.create_fields([REVENUE])
    assert platform.inspect_fields([REVENUE])[REVENUE.key].type == "string"  # type: ignore[union-attr]


def test_enumeration_options_follow_the_spec(platform: HubSpotPlatform) -> None:
    platform.create_fields([SEGMENT])
    grown = SEGMENT.model_copy(update={"options": (*SEGMENT.options, FieldOption(value="new", label="New"))})
    assert platform.field_matches(grown, platform.inspect_fields([grown])[grown.key]) is None  # type: ignore[arg-type]
    platform.update_field_options(grown)
    assert platform.inspect_fields([grown])[grown.key].options == ("champions", "lost", "new")  # type: ignore[union-attr]


# -- writes --------------------------------------------------------------------------------


def test_write_fields_round_trip_and_207_per_record(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform
) -> None:
    platform.create_fields(FIELDS)
    values = {
        SEGMENT.key: "champions",
        REVENUE.key: Decimal("120.50"),
        SINCE.key: dt.date(2024, 2, 29),
        SCORE.key: "545",
    }
    result = platform.write_fields(
        [
            ContactUpdate(contact_id="100", values=values),
            ContactUpdate(contact_id="999999", values={SCORE.key: "1"}),
            ContactUpdate(contact_id="101", values={SEGMENT.key: "no-such-segment"}),
            ContactUpdate(contact_id="102", values={SCORE.key: "111"}),
        ]
    )
    assert result.ok == ("100", "102")
    assert {f.record_id: f.reason for f in result.failed} == {
        "999999": "OBJECT_NOT_FOUND (OBJECT_NOT_FOUND)",
        "101": f"VALIDATION_ERROR (INVALID_OPTION) on {SEGMENT.key}",
    }
    got = contacts_of(platform)
    assert dict(got["100"].managed) == values  # type: ignore[attr-defined]
    assert sandbox.contact_values("100")[REVENUE.key] == "120.5"
    cleared = platform.write_fields([ContactUpdate(contact_id="100", values=dict.fromkeys(values))])
    assert cleared.ok == ("100",)
    assert all(v is None for v in contacts_of(platform)["100"].managed.values())  # type: ignore[attr-defined]


def test_a_batch_refused_whole_is_split_down_to_the_bad_record(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, small_data: SeedData
) -> None:
    sb = make_sandbox(small_data, whole_batch_validation=True)
    platform = make_platform(sb)
    platform.create_fields([SEGMENT, SCORE])
    ids = [str(i) for i in range(100, 106)]
    updates = [ContactUpdate(contact_id=c, values={SCORE.key: f"s{c}"}) for c in ids]
    updates[2] = ContactUpdate(contact_id="102", values={SEGMENT.key: "not-an-option"})
    result = platform.write_fields(updates)
    assert result.ok == ("100", "101", "103", "104", "105")
    assert [f.record_id for f in result.failed] == ["102"]
    assert all(sb.contact_values(c)[SCORE.key] == f"s{c}" for c in result.ok)
    assert platform.runner.stats.per_operation["contacts.write"] == 7


def test_write_to_a_deleted_contact_fails_that_record_only(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform
) -> None:
    platform.create_fields([SCORE])
    sandbox.delete_contact("102")
    result = platform.write_fields(
        [ContactUpdate(contact_id=c, values={SCORE.key: "x"}) for c in ("101", "102")]
    )
    assert result.ok == ("101",)
    assert [f.record_id for f in result.failed] == ["102"]


# -- lists ---------------------------------------------------------------------------------


def test_manual_list_lifecycle(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    assert platform.find_list(CHAMPIONS.name) is None
    created = platform.create_list(CHAMPIONS, dynamic=False)
    assert (created.name, created.dynamic, created.size) == (CHAMPIONS.name, False, 0)
    assert platform.find_list("SEGSYNC · champions") == created, "names match case-insensitively"
    added = platform.add_members(created.id, ["100", "101", "424242"])
    assert added.ok == ("100", "101")
    assert [f.record_id for f in added.failed] == ["424242"]
    assert platform.add_members(created.id, ["100"]).ok == ("100",), "members already in count as ok"
    assert list(platform.list_members(created.id)) == ["100", "101"]
    assert platform.remove_members(created.id, ["100", "424242", "105"]).ok == ("100", "424242", "105")
    assert list(platform.list_members(created.id)) == ["101"]
    sandbox.rename_list(created.id, "Our best customers")
    renamed = platform.get_list(created.id)
    assert renamed is not None
    assert (renamed.id, renamed.name, renamed.size) == (created.id, "Our best customers", 1)
    sandbox.delete_list(created.id)
    assert platform.get_list(created.id) is None
    with pytest.raises(PermanentError) as err:
        platform.add_members(created.id, ["101"])
    assert err.value.status == 404


def test_dynamic_list_membership_follows_the_property(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform
) -> None:
    platform.create_fields([SEGMENT])
    lost = platform.create_list(LOST, dynamic=True)
    assert lost.dynamic
    assert list(platform.list_members(lost.id)) == []
    platform.write_fields([ContactUpdate(contact_id=c, values={SEGMENT.key: "lost"}) for c in ("104", "102")])
    assert list(platform.list_members(lost.id)) == ["102", "104"]
    platform.write_fields([ContactUpdate(contact_id="102", values={SEGMENT.key: "champions"})])
    assert list(platform.list_members(lost.id)) == ["104"]
    with pytest.raises(PermanentError):
        platform.add_members(lost.id, ["100"])


def test_list_name_clash_is_resolved_by_lookup(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    first = platform.create_list(CHAMPIONS, dynamic=False)
    again = platform.create_list(CHAMPIONS.model_copy(update={"name": "SEGSYNC · CHAMPIONS"}), dynamic=False)
    assert again.id == first.id
    assert sandbox.snapshot()["list_names"] == [CHAMPIONS.name]
    platform.create_fields([SEGMENT])
    with pytest.raises(ConflictError, match="MANUAL"):
        platform.create_list(LOST.model_copy(update={"name": CHAMPIONS.name}), dynamic=True)


def test_membership_reads_page(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, demo_data: SeedData
) -> None:
    platform = make_platform(make_sandbox(demo_data), membership_batch=150)
    ids = sorted(c.id for c in demo_data.contacts)
    lst = platform.create_list(CHAMPIONS, dynamic=False)
    assert set(platform.add_members(lst.id, ids[:150]).ok) == set(ids[:150])
    before = platform.runner.stats.per_operation["lists.members"]
    assert list(platform.list_members(lst.id)) == ids[:150]
    assert platform.runner.stats.per_operation["lists.members"] - before == 1
    assert platform.call_cost("read_members", 150) == {"default": 1}


# -- auth, scopes, network -----------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token-0000", ""])
def test_wrong_or_missing_token_is_a_one_line_auth_error(
    sandbox: HubSpotSandbox, make_platform: MakePlatform, token: str
) -> None:
    platform = make_platform(sandbox, token=token)
    with pytest.raises(AuthError) as err:
        platform.check()
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("hubspot: check.contacts: 401 ")
    assert token not in text or not token
    assert platform.runner.stats.calls == 1, "a rejected token is not retried"


def test_check_names_every_missing_scope(make_sandbox: MakeSandbox, make_platform: MakePlatform) -> None:
    granted = set(SCOPES) - {"crm.lists.write", "crm.schemas.contacts.write"}
    platform = make_platform(make_sandbox(SeedData([], []), scopes=granted))
    with pytest.raises(PermissionDenied) as err:
        platform.check()
    assert set(err.value.required_scopes) == {"crm.lists.write", "crm.schemas.contacts.write"}
    assert "crm.lists.write" in str(err.value)


def test_check_with_all_scopes_returns_notes(sandbox: HubSpotSandbox, platform: HubSpotPlatform) -> None:
    notes = platform.check()
    assert any("token accepted" in n for n in notes)
    assert sandbox.snapshot()["list_names"] == [], "check creates nothing"
    assert sandbox.snapshot()["field_defs"] == []


def test_unreachable_base_url_is_transient_after_retries(
    make_platform: MakePlatform, clock: FakeClock
) -> None:
    platform = make_platform(base_url="http://127.0.0.1:9")
    with pytest.raises(TransientError, match=r"could not connect to http://127\.0\.0\.1:9"):
        platform.find_list("x")
    assert platform.runner.stats.calls == 4
    assert clock.slept > 0


def test_a_dropped_connection_is_exactly_one_request_per_attempt(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform
) -> None:
    sandbox.server.set_faults(FaultPlan(script=["drop"] * 4))
    seen = sandbox.server.requests_seen
    with pytest.raises(TransientError, match="failed mid-request"):
        platform.get_list("1")
    assert sandbox.server.requests_seen - seen == 4
    assert platform.runner.stats.calls == 4


def test_an_unmapped_success_status_is_an_error(
    make_sandbox: MakeSandbox, make_platform: MakePlatform
) -> None:
    sb = make_sandbox(SeedData([], []), log=False)  # deliberately off-spec: kept out of the conformance log

    def created(req: Request, m: re.Match[str]) -> Response:
        return Response(201, {"list": {"listId": "1", "name": "x"}})

    sb.server.routes.insert(0, ("POST", re.compile(r"^/crm/v3/lists/?$"), created))
    with pytest.raises(PermanentError, match="answered 201 where 200"):
        make_platform(sb).create_list(CHAMPIONS, dynamic=False)


# -- rate limits and faults ----------------------------------------------------------------


def test_client_throttle_keeps_under_the_limit(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, clock: FakeClock
) -> None:
    sb = make_sandbox(SeedData([], []), rate_limit=5)
    platform = make_platform(sb, rate_limit_per_10s=5)
    for _ in range(12):
        assert platform.find_list("nothing") is None
    assert platform.runner.stats.rate_limited == 0
    assert clock.slept >= 20, "12 calls at 5 per 10 s need two waits"


def test_rate_limit_headers_hold_calls_when_settings_are_too_generous(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, clock: FakeClock
) -> None:
    sb = make_sandbox(SeedData([], []), rate_limit=3)
    platform = make_platform(sb)  # believes in 190/10 s; the answers' headers say otherwise
    for _ in range(7):
        assert platform.find_list("nothing") is None  # 404s carry the headers too
    assert platform.runner.stats.rate_limited == 0
    assert clock.slept >= 20


def test_a_429_is_retried_after_the_window(
    make_sandbox: MakeSandbox, make_platform: MakePlatform, clock: FakeClock
) -> None:
    sb = make_sandbox(SeedData([], []), rate_limit=2)
    platform = make_platform(sb)
    with sb.server.lock:  # another app of the same account spends the window
        sb.server.rates.take("ten_secondly")
        sb.server.rates.take("ten_secondly")
    assert platform.find_list("nothing") is None
    assert platform.runner.stats.rate_limited == 1
    assert clock.sleeps == [10.0], "waits the rate-limit interval from the 429's headers"


def test_a_forced_429_with_retry_after(
    sandbox: HubSpotSandbox, platform: HubSpotPlatform, clock: FakeClock
) -> None:
    sandbox.server.set_faults(FaultPlan(script=["429"], retry_after=2))
    seen = sandbox.server.requests_seen
    assert platform.find_list("nothing") is None
    assert clock.sleeps == [2.0]
    assert sandbox.server.requests_seen - seen == 2, "urllib3 must not retry a GET with Retry-After itself"


def test_a_repeated_paging_cursor_stops_the_pull(
    make_sandbox: MakeSandbox, make_platform: MakePlatform
) -> None:
    sb = make_sandbox(SeedData([], []), log=False)

    def same_page(req: Request, m: re.Match[str]) -> Response:
        return Response(200, {"results": [], "paging": {"next": {"after": "7"}}})

    sb.server.routes.insert(0, ("GET", re.compile(r"^/crm/v3/objects/contacts$"), same_page))
    platform = make_platform(sb)
    with pytest.raises(PermanentError, match="repeated a paging cursor"):
        list(platform.iter_contacts([], [], {}))
    assert platform.runner.stats.per_operation["contacts.list"] == 2


FAULTS = ["429", "500", "502", "503", "timeout", "drop", "lost_response"]


@pytest.mark.parametrize("kind", FAULTS)
def test_every_fault_kind_against_a_write(
    sandbox: HubSpotSandbox, make_platform: MakePlatform, kind: str
) -> None:
    platform = make_platform(sandbox, timeout=0.2)
    platform.create_fields([SCORE])
    sandbox.server.set_faults(FaultPlan(script=[kind], methods=["POST"], hang_seconds=0.4))
    result = platform.write_fields(
        [ContactUpdate(contact_id=c, values={SCORE.key: "544"}) for c in ("100", "101")]
    )
    assert result.ok == ("100", "101")
    assert not result.failed
    assert sandbox.server.faults_injected == {kind: 1}
    assert platform.runner.stats.retries == 1
    assert {c: sandbox.contact_values(c)[SCORE.key] for c in ("100", "101")} == {"100": "544", "101": "544"}


@pytest.mark.parametrize("kind", ["lost_response", "timeout"])
def test_a_create_whose_answer_was_lost_makes_one_list_and_one_property(
    sandbox: HubSpotSandbox, make_platform: MakePlatform, kind: str
) -> None:
    platform = make_platform(sandbox, timeout=0.2)
    sandbox.server.set_faults(FaultPlan(script=[kind, "ok", kind], methods=["POST"], hang_seconds=0.4))
    platform.create_fields([SCORE, REVENUE])
    lst = platform.create_list(CHAMPIONS, dynamic=False)
    snap = sandbox.snapshot()
    assert snap["field_defs"] == sorted([SCORE.key, REVENUE.key])
    assert snap["list_names"] == [CHAMPIONS.name]
    assert platform.find_list(CHAMPIONS.name) == lst


def test_retries_give_up_with_the_last_error(
    sandbox: HubSpotSandbox, make_platform: MakePlatform, clock: FakeClock
) -> None:
    platform = make_platform(sandbox, policy=RetryPolicy(max_attempts=3, backoff_initial=0.1))
    sandbox.server.set_faults(FaultPlan(script=["503"] * 3))
    with pytest.raises(TransientError, match="503"):
        platform.find_list("x")
    assert platform.runner.stats.calls == 3
