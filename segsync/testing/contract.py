"""The platform contract: one pytest class every platform plugin runs against its sandbox.

Subclass :class:`PlatformContract` in a test module and override the ``world`` fixture; every
test then runs against a fresh account seeded with a small demo store::

    import pytest
    from segsync.testing import PlatformContract, SandboxWorld
    from segsync_hubspot.platform import HubSpotPlatform

    class TestHubSpotContract(PlatformContract):
        @pytest.fixture
        def world(self):
            return SandboxWorld(HubSpotPlatform, settings={"timeout": 0.2})

The tests pin down the conventions the engine relies on (see :mod:`segsync.sync.platform`): pulls
yield every seeded record once, as a record or a rejection; fields are created only when
missing and type conflicts are detected; lists are found by name and by id, and a deleted list
is gone; memberships and writes are idempotent and respect the batch maxima; values read back
equal what was written (None clears); a deleted contact fails per record, not per call; and
``call_cost`` predicts the calls the writes really make. The core runs this suite on
:class:`~segsync.testing.FakePlatform` too.

Class attributes tune the data: ``contract_contacts`` (default 60) for most tests and
``batch_contacts`` (default 320; must be at least the platform's batch maxima) for the
batch-maximum tests.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import ClassVar, get_args

import pytest

from segsync.core.models import (
    Contact,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    FieldValue,
    ListSpec,
    PullProgress,
    Purchase,
    Rejection,
    RemoteField,
)
from segsync.errors import AuthError, PlatformError
from segsync.sandbox import SeedData, demo_dataset
from segsync.sync.platform import CostKind, Platform
from segsync.sync.runner import CallRunner, RetryPolicy
from segsync.testing.clock import FakeClock
from segsync.testing.world import World, make_runner

AS_OF = dt.date(2026, 1, 15)
#: Short waits and few attempts: the fake clock makes waits free, but tests should fail fast.
POLICY = RetryPolicy(max_attempts=4, max_total_seconds=600, backoff_initial=0.1, max_rate_wait=7200)

CONTRACT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(key="segsync_contract_text", label="Contract text", type="string"),
    FieldSpec(key="segsync_contract_number", label="Contract number", type="number"),
    FieldSpec(key="segsync_contract_date", label="Contract date", type="date"),
    FieldSpec(
        key="segsync_contract_choice",
        label="Contract choice",
        type="enumeration",
        options=(FieldOption(value="alpha", label="Alpha"), FieldOption(value="beta", label="Beta")),
    ),
)
_TEXT, _NUMBER, _DATE, _CHOICE = (f.key for f in CONTRACT_FIELDS)
WRITE_KINDS: tuple[CostKind, ...] = ("write_fields", "add_members", "remove_members")


def contract_list(suffix: str = "") -> ListSpec:
    return ListSpec(key=f"contract{suffix}", name=f"segsync · Contract{suffix}", description="contract suite")


def pull_contacts(
    platform: Platform, managed: Sequence[FieldSpec] = (), lists: Mapping[str, str] | None = None
) -> dict[str, Contact]:
    """Every contact the platform yields, by id; rejections are dropped."""
    out: dict[str, Contact] = {}
    for rec in platform.iter_contacts(["email", "firstname", "country"], managed, lists or {}):
        if isinstance(rec, Contact):
            assert rec.id not in out, f"contact {rec.id} was yielded twice"
            out[rec.id] = rec
    return out


def _calls(runner: CallRunner) -> Counter[str]:
    return Counter(runner.stats.per_bucket)


def _delta(runner: CallRunner, before: Counter[str]) -> dict[str, int]:
    after = _calls(runner)
    return {b: after[b] - before[b] for b in after if after[b] - before[b]}


def _nonzero(cost: Mapping[str, int]) -> dict[str, int]:
    return {b: n for b, n in cost.items() if n}


def _parse_seed_time(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class PlatformContract:
    """Subclass and override the ``world`` fixture (see the module docstring)."""

    contract_contacts: ClassVar[int] = 60
    batch_contacts: ClassVar[int] = 320

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture
    def world(self) -> World:
        pytest.fail("override the `world` fixture: return e.g. SandboxWorld(MyPlatform)")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def data(self, request: pytest.FixtureRequest) -> SeedData:
        if getattr(request, "param", None) == "big":
            return SeedData(demo_dataset(AS_OF, contacts=self.batch_contacts).contacts, [])
        return demo_dataset(AS_OF, contacts=self.contract_contacts)

    @pytest.fixture
    def started(self, world: World, data: SeedData, clock: FakeClock) -> Iterator[World]:
        world.start(data, clock=clock)
        try:
            yield world
        finally:
            world.stop()

    @pytest.fixture
    def runner(self, started: World, clock: FakeClock) -> CallRunner:
        return make_runner(started, clock, POLICY)

    @pytest.fixture
    def platform(self, started: World, runner: CallRunner) -> Iterator[Platform]:
        platform = started.connect(runner)
        try:
            yield platform
        finally:
            platform.close()

    @pytest.fixture
    def fields(self, platform: Platform) -> Mapping[str, RemoteField]:
        """The contract fields, created."""
        platform.create_fields(CONTRACT_FIELDS)
        remote = platform.inspect_fields(CONTRACT_FIELDS)
        assert all(remote[s.key] is not None for s in CONTRACT_FIELDS), remote
        return {k: v for k, v in remote.items() if v is not None}

    # -- account and pulls ----------------------------------------------------------------

    def test_check_returns_notes(self, platform: Platform) -> None:
        notes = platform.check()
        assert isinstance(notes, list)
        assert all(isinstance(n, str) for n in notes)

    def test_account_id_is_the_crms_stable_id_and_never_the_secret(
        self, platform: Platform, started: World, runner: CallRunner
    ) -> None:
        from segsync.sync.connect import account_key

        first, again = platform.account_id(), platform.account_id()
        assert first == again
        assert first.strip()
        assert first == first.strip()
        key = account_key(platform)
        assert key == f"{platform.name}:{first}"
        secret = getattr(started, "secret", None)
        assert not secret or secret not in first
        with pytest.raises(AuthError):
            started.connect(runner, secret="wrong-secret-4a1b9c").account_id()  # noqa: S106

    def test_wrong_secret_is_an_auth_error_without_the_secret(
        self, started: World, runner: CallRunner
    ) -> None:
        wrong = "wrong-secret-4a1b9c"
        platform = started.connect(runner, secret=wrong)
        with pytest.raises(AuthError) as err:
            platform.check()
        assert wrong not in str(err.value)
        assert runner.stats.retries == 0, "auth errors must not be retried"

    def test_pull_contacts_yields_every_seeded_contact_once(self, platform: Platform, data: SeedData) -> None:
        seen: Counter[str] = Counter()
        contacts = {}
        for rec in platform.iter_contacts(["email", "firstname", "country"], [], {}):
            seen[rec.record_id if isinstance(rec, Rejection) else rec.id] += 1
            if isinstance(rec, Contact):
                contacts[rec.id] = rec
            else:
                assert rec.kind == "contact"
                assert rec.reason
        assert set(seen) == {c.id for c in data.contacts}
        assert max(seen.values()) == 1
        for c in data.contacts:
            if c.id in contacts:
                got = contacts[c.id]
                assert (got.email or "") == c.email
                assert got.properties.get("firstname") == (c.firstname or None)
                assert got.properties.get("country") == (c.country or None)

    def test_pull_purchases_yields_won_deals_and_rejects_broken_ones(
        self, platform: Platform, data: SeedData
    ) -> None:
        """Compared by content, not id: a CRM may give seeded deals ids of its own."""
        purchases: list[Purchase] = []
        rejected: list[Rejection] = []
        for rec in platform.iter_purchases(None):
            if isinstance(rec, Purchase):
                purchases.append(rec)
            elif isinstance(rec, Rejection):
                assert rec.kind == "purchase", rec
                assert rec.reason, rec
                rejected.append(rec)
            elif not isinstance(rec, PullProgress):  # a watermark is no record: allowed
                pytest.fail(f"a full pull yielded {rec!r}")
        won = [d for d in data.purchases if d.stage == "won"]
        broken = [d for d in won if not d.contact_id or not d.closedate or not _is_number(d.amount)]
        good = [d for d in won if d not in broken]
        home = Counter(
            (d.contact_id, Decimal(d.amount), _parse_seed_time(d.closedate))
            for d in good
            if d.currency == "USD"
        )
        got = Counter((p.contact_id, p.amount, p.closed_at) for p in purchases if p.currency != "EUR")
        assert got == home, (
            f"missing {list((home - got).items())[:5]}, unexpected {list((got - home).items())[:5]}"
        )
        foreign = len(good) - sum(home.values())  # other currencies: pulled as such, or rejected
        eur = [p for p in purchases if p.currency == "EUR"]
        assert len(eur) <= foreign
        assert len(rejected) + len(eur) >= len(broken) + foreign, "every broken won deal is rejected"
        assert len(rejected) <= len(broken) + foreign, "lost and open deals are not purchases, nor bad data"
        assert {r.record_id for r in rejected}.isdisjoint(p.id for p in purchases)

    def test_incremental_pull_yields_a_new_purchase(self, platform: Platform, started: World) -> None:
        if not platform.incremental_purchases:
            pytest.skip("platform does not pull purchases incrementally")
        stamps = [
            r.modified_at for r in platform.iter_purchases(None) if isinstance(r, Purchase) and r.modified_at
        ]
        assert stamps, "incremental platforms must set Purchase.modified_at (the cursor comes from it)"
        since = max(stamps) - dt.timedelta(seconds=1)
        contact = next(iter(pull_contacts(platform)))
        new_id = started.add_purchase(contact, Decimal("42.00"), dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC))
        found = [r for r in platform.iter_purchases(since) if isinstance(r, Purchase) and r.id == new_id]
        assert [(p.contact_id, p.amount) for p in found] == [(contact, Decimal("42.00"))]

    # -- fields ---------------------------------------------------------------------------

    def test_fields_are_created_only_when_missing(self, platform: Platform) -> None:
        before = platform.inspect_fields(CONTRACT_FIELDS)
        assert set(before) == {s.key for s in CONTRACT_FIELDS}
        assert all(v is None for v in before.values()), "a fresh account has no segsync fields"
        platform.create_fields(CONTRACT_FIELDS)
        after = platform.inspect_fields(CONTRACT_FIELDS)
        for spec in CONTRACT_FIELDS:
            remote = after[spec.key]
            assert remote is not None, f"{spec.key} was not created"
            assert platform.field_matches(spec, remote) is None
            if spec.type == "enumeration":
                assert set(remote.options) == {o.value for o in spec.options}, (
                    "options list the option values"
                )

    def test_type_conflicts_are_detected(self, platform: Platform, fields: Mapping[str, RemoteField]) -> None:
        for spec in CONTRACT_FIELDS:
            for other in CONTRACT_FIELDS:
                if other.type != spec.type:
                    reason = platform.field_matches(spec, fields[other.key])
                    assert reason, f"a remote {other.type} field must conflict with a {spec.type} spec"

    def test_enumeration_options_can_be_extended(
        self, platform: Platform, fields: Mapping[str, RemoteField]
    ) -> None:
        spec = CONTRACT_FIELDS[3]
        grown = spec.model_copy(
            update={"options": (*spec.options, FieldOption(value="gamma", label="Gamma"))}
        )
        platform.update_field_options(grown)
        remote = platform.inspect_fields([grown])[grown.key]
        assert remote is not None
        assert set(remote.options) == {"alpha", "beta", "gamma"}
        assert platform.field_matches(grown, remote) is None

    # -- lists ----------------------------------------------------------------------------

    def test_lists_are_found_by_name_and_id_and_vanish_when_deleted(
        self, platform: Platform, started: World
    ) -> None:
        spec = contract_list()
        assert platform.find_list(spec.name) is None
        created = platform.create_list(spec, dynamic=False)
        assert created.name == spec.name
        assert created.id
        found = platform.find_list(spec.name)
        assert found is not None
        assert found.id == created.id
        got = platform.get_list(created.id)
        assert got is not None
        assert got.name == spec.name
        started.delete_list(created.id)
        assert platform.get_list(created.id) is None
        assert platform.find_list(spec.name) is None

    def test_memberships_are_idempotent(self, platform: Platform) -> None:
        a, b = sorted(pull_contacts(platform))[:2]
        lst = platform.create_list(contract_list(), dynamic=False)
        assert set(platform.add_members(lst.id, [a, b]).ok) == {a, b}
        assert set(platform.add_members(lst.id, [a, b]).ok) == {a, b}, "members already in count as ok"
        assert set(platform.list_members(lst.id)) == {a, b}
        assert set(platform.remove_members(lst.id, [a]).ok) == {a}
        assert set(platform.remove_members(lst.id, [a]).ok) == {a}, "non-members count as ok"
        assert set(platform.list_members(lst.id)) == {b}
        if platform.memberships_inline:
            contacts = pull_contacts(platform, lists={"contract": lst.id})
            assert contacts[b].lists == frozenset({"contract"})
            assert contacts[a].lists == frozenset()

    @pytest.mark.parametrize("data", ["big"], indirect=True)
    def test_membership_batch_maximum(self, platform: Platform, runner: CallRunner, data: SeedData) -> None:
        n = platform.limits.membership_batch
        if n > len(data.contacts):
            pytest.skip(f"raise batch_contacts to at least {n}")
        ids = sorted(pull_contacts(platform))[:n]
        lst = platform.create_list(contract_list(), dynamic=False)
        before = _calls(runner)
        assert set(platform.add_members(lst.id, ids).ok) == set(ids)
        assert _delta(runner, before) == _nonzero(platform.call_cost("add_members", n))
        assert set(platform.list_members(lst.id)) == set(ids)
        before = _calls(runner)
        assert set(platform.remove_members(lst.id, ids).ok) == set(ids)
        assert _delta(runner, before) == _nonzero(platform.call_cost("remove_members", n))

    # -- values ---------------------------------------------------------------------------

    def test_written_values_read_back_equal(
        self, platform: Platform, fields: Mapping[str, RemoteField]
    ) -> None:
        a, b = sorted(pull_contacts(platform))[:2]
        wanted: dict[str, dict[str, FieldValue]] = {
            a: {
                _TEXT: "Champions · café",
                _NUMBER: Decimal("12.50"),
                _DATE: dt.date(2024, 2, 29),
                _CHOICE: "beta",
            },
            b: {_TEXT: "x", _NUMBER: 3, _DATE: dt.date(2025, 12, 31), _CHOICE: "alpha"},
        }
        result = platform.write_fields([ContactUpdate(contact_id=c, values=v) for c, v in wanted.items()])
        assert set(result.ok) == {a, b}
        assert not result.failed
        got = pull_contacts(platform, CONTRACT_FIELDS)
        for cid, values in wanted.items():
            assert dict(got[cid].managed) == values
        cleared: dict[str, FieldValue] = dict.fromkeys(wanted[a])
        assert platform.write_fields([ContactUpdate(contact_id=a, values=cleared)]).ok == (a,)
        again = pull_contacts(platform, CONTRACT_FIELDS)
        assert dict(again[a].managed) == cleared, "None clears a field"
        assert dict(again[b].managed) == wanted[b]

    @pytest.mark.parametrize("data", ["big"], indirect=True)
    def test_write_batch_maximum(
        self, platform: Platform, runner: CallRunner, data: SeedData, fields: Mapping[str, RemoteField]
    ) -> None:
        n = platform.limits.write_batch
        if n > len(data.contacts):
            pytest.skip(f"raise batch_contacts to at least {n}")
        ids = sorted(pull_contacts(platform))[:n]
        before = _calls(runner)
        updates = [ContactUpdate(contact_id=c, values={_NUMBER: i}) for i, c in enumerate(ids)]
        result = platform.write_fields(updates)
        assert set(result.ok) == set(ids)
        assert not result.failed
        assert _delta(runner, before) == _nonzero(platform.call_cost("write_fields", n))
        got = pull_contacts(platform, CONTRACT_FIELDS)
        assert all(got[c].managed[_NUMBER] == i for i, c in enumerate(ids))

    def test_deleted_contact_fails_per_record(
        self, platform: Platform, started: World, data: SeedData, fields: Mapping[str, RemoteField]
    ) -> None:
        live, gone = sorted(pull_contacts(platform))[:2]
        email = next(c.email for c in data.contacts if c.id == gone)
        started.delete_contact(gone)
        result = platform.write_fields(
            [ContactUpdate(contact_id=c, values={_TEXT: "still here"}) for c in (live, gone)]
        )
        assert result.ok == (live,)
        assert [f.record_id for f in result.failed] == [gone]
        assert result.failed[0].reason
        assert not email or email not in result.failed[0].reason
        assert pull_contacts(platform, CONTRACT_FIELDS)[live].managed[_TEXT] == "still here"
        lst = platform.create_list(contract_list(), dynamic=False)
        members = platform.add_members(lst.id, [live, gone])
        assert gone not in members.ok
        assert live in members.ok
        assert set(platform.list_members(lst.id)) == {live}

    def test_write_to_a_deleted_list_raises(self, platform: Platform, started: World) -> None:
        (cid,) = sorted(pull_contacts(platform))[:1]
        lst = platform.create_list(contract_list(), dynamic=False)
        started.delete_list(lst.id)
        with pytest.raises(PlatformError):
            platform.add_members(lst.id, [cid])

    # -- costs ----------------------------------------------------------------------------

    def test_call_cost_is_sane(self, platform: Platform, started: World) -> None:
        buckets = set(platform.rate_buckets(started.settings()))
        for kind in get_args(CostKind):
            previous = 0
            for n in (0, 1, 7, 150, 1000, 25_000):
                cost = platform.call_cost(kind, n)
                assert all(isinstance(v, int) and v >= 0 for v in cost.values()), (kind, n, cost)
                assert not buckets or set(_nonzero(cost)) <= buckets, f"{kind} costs calls in unknown buckets"
                total = sum(cost.values())
                assert total >= previous, f"call_cost({kind!r}, n) must not shrink as n grows"
                previous = total
                if kind in WRITE_KINDS and n == 0:
                    assert total == 0, f"{kind} of nothing must cost nothing"
            if kind in WRITE_KINDS:
                assert previous >= 1, f"{kind} of 25000 records cannot be free"


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return bool(text)


__all__ = ["AS_OF", "CONTRACT_FIELDS", "POLICY", "PlatformContract", "contract_list", "pull_contacts"]
