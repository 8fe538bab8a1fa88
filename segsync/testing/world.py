"""A "world": one fresh CRM account to test a platform against, a sandbox or the fake CRM.

The contract suite and the reliability harness only need what :class:`World` offers, so a
plugin reuses both by handing over its platform class::

    from segsync.testing import SandboxWorld

    world = SandboxWorld(HubSpotPlatform)          # runs HubSpotPlatform.sandbox() on loopback
    world.start(seed_data, clock=FakeClock())      # fresh account, sandbox rate windows on the fake clock
    platform = world.connect(runner)               # HubSpotPlatform.create(settings, secret=..., runner=...)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from segsync.sandbox import FaultPlan, Sandbox, SeedData
from segsync.sync.platform import Platform, PlatformSettings
from segsync.sync.runner import CallRunner, Clock, RetryPolicy
from segsync.testing.fake import FakeCRM, FakePlatform, FakeSettings


class World(Protocol):
    """One CRM account under test. ``start`` makes it fresh; ``stop`` releases it."""

    platform_cls: type[Platform]

    def start(self, data: SeedData, *, clock: Clock) -> None:
        """A new, empty account seeded with ``data``; rate windows run on ``clock``."""

    def stop(self) -> None: ...

    def settings(self) -> PlatformSettings:
        """The ``[platforms.<name>]`` settings pointing at this account."""

    def connect(self, runner: CallRunner, *, secret: str | None = None) -> Platform:
        """A platform client for this account (``secret`` overrides the accepted credential)."""

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Answer later requests badly according to ``plan`` (None: no faults)."""

    def snapshot(self) -> dict[str, object]:
        """The :meth:`segsync.sandbox.Sandbox.snapshot` of the account."""

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str: ...

    def delete_contact(self, contact_id: str) -> None: ...

    def delete_list(self, list_id: str) -> None: ...


def make_runner(world: World, clock: Clock, policy: RetryPolicy | None = None) -> CallRunner:
    """A runner with the platform's own rate windows for the world's settings, on ``clock``."""
    cls = world.platform_cls
    return CallRunner(cls.name, policy=policy, buckets=cls.rate_buckets(world.settings()), clock=clock)


class FakeWorld:
    """The in-memory :class:`FakeCRM` as a world; ``crm`` is there for direct arrangement."""

    def __init__(
        self, platform_cls: type[FakePlatform] = FakePlatform, settings: FakeSettings | None = None
    ) -> None:
        self.platform_cls: type[Platform] = platform_cls
        self._cls = platform_cls
        self._settings = settings or FakeSettings()
        self._crm: FakeCRM | None = None

    @property
    def crm(self) -> FakeCRM:
        assert self._crm is not None, "start() the world first"
        return self._crm

    def start(self, data: SeedData, *, clock: Clock) -> None:
        self._crm = FakeCRM(clock=clock, buckets=self._cls.rate_buckets(self._settings))
        self._crm.seed(data)

    def stop(self) -> None:
        self._crm = None

    def settings(self) -> PlatformSettings:
        return self._settings

    def connect(self, runner: CallRunner, *, secret: str | None = None) -> Platform:
        return self._cls(self.crm, runner=runner, settings=self._settings, token=secret or self.crm.secret)

    def set_faults(self, plan: FaultPlan | None) -> None:
        self.crm.set_faults(plan)

    def snapshot(self) -> dict[str, object]:
        return self.crm.snapshot()

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        return self.crm.add_purchase(contact_id, amount, closed_at)

    def delete_contact(self, contact_id: str) -> None:
        self.crm.delete_contact(contact_id)

    def delete_list(self, list_id: str) -> None:
        self.crm.delete_list(list_id)


class SandboxWorld:
    """A platform's loopback sandbox (``platform_cls.sandbox()``) as a world.

    ``settings`` are extra ``[platforms.<name>]`` values (``base_url`` is filled in);
    ``hang_seconds`` bounds the real time a ``timeout`` fault holds a connection, so keep the
    settings' ``timeout`` below it; ``traffic_log`` records every exchange for spec-check.
    """

    def __init__(
        self,
        platform_cls: type[Platform],
        *,
        secret: str = "sandbox-secret",  # noqa: S107 - what the loopback sandbox accepts
        settings: Mapping[str, Any] | None = None,
        traffic_log: Path | None = None,
        hang_seconds: float = 0.3,
    ) -> None:
        sandbox_cls = platform_cls.sandbox()
        if sandbox_cls is None:
            raise ValueError(f"platform {platform_cls.name!r} ships no sandbox")
        self.platform_cls = platform_cls
        self.secret = secret
        self.hang_seconds = hang_seconds
        self._sandbox_cls = sandbox_cls
        self._extra = dict(settings or {})
        self._traffic_log = traffic_log
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        assert self._sandbox is not None, "start() the world first"
        return self._sandbox

    def start(self, data: SeedData, *, clock: Clock) -> None:
        sb = self._sandbox_cls(
            secret=self.secret,
            traffic_log=self._traffic_log,
            faults=FaultPlan(hang_seconds=self.hang_seconds),
            clock=clock,
        )
        sb.seed(data)
        sb.start()
        self._sandbox = sb

    def stop(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None

    def settings(self) -> PlatformSettings:
        return self.platform_cls.Settings.model_validate({**self._extra, "base_url": self.sandbox.base_url})

    def connect(self, runner: CallRunner, *, secret: str | None = None) -> Platform:
        return self.platform_cls.create(
            self.settings(), secret=SecretStr(secret or self.secret), runner=runner
        )

    def set_faults(self, plan: FaultPlan | None) -> None:
        base = plan or FaultPlan()
        if plan is None or "hang_seconds" not in plan.model_fields_set:
            base = base.model_copy(update={"hang_seconds": self.hang_seconds})
        self.sandbox.server.set_faults(base)

    def snapshot(self) -> dict[str, object]:
        return self.sandbox.snapshot()

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        return self.sandbox.add_purchase(contact_id, amount, closed_at)

    def delete_contact(self, contact_id: str) -> None:
        self.sandbox.delete_contact(contact_id)

    def delete_list(self, list_id: str) -> None:
        self.sandbox.delete_list(list_id)
