"""``segsync plan``/``sync`` for one configured platform: the project's packs and settings bound
into a :class:`~segsync.sync.engine.SyncSpec`, a connected platform, the state store, one job."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segsync.core.columns.ledger import PurchaseLedger
from segsync.core.desired import Desired
from segsync.core.models import Contact
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig
from segsync.sync.engine import Hooks, Progress, SyncResult, SyncSpec, run_sync
from segsync.sync.runner import Clock, SimulatedClock
from segsync.sync.state import DEFAULT_STALE_AFTER, StateStore, WallClock

log = logging.getLogger("segsync.engine")


def open_store(config: ProjectConfig, env: Mapping[str, str] | None = None, **kw: Any) -> StateStore:
    """The project's state store: ``[state] url`` (its password from ``SEGSYNC_STATE_PASSWORD``),
    else the SQLite file."""
    from segsync.sync.state.db import PASSWORD_ENV

    target = config.state_target
    env = os.environ if env is None else env
    password = env.get(PASSWORD_ENV) if isinstance(target, str) else None
    return StateStore(target, password=password, **kw)


def store_exists(config: ProjectConfig) -> bool:
    """Whether there may be state to read (a database always may; a file only once made)."""
    return isinstance(config.state_target, str) or config.state_path.is_file()


def project_spec(config: ProjectConfig, packs: Sequence[Any], registry: Registry) -> SyncSpec:
    """The :class:`SyncSpec` of a configured project (its segment packs already loaded)."""
    from segsync.core.columns.objects import compute_rows
    from segsync.core.desired import desired_fields, desired_lists, required_properties

    def run(contacts: Sequence[Contact], ledger: PurchaseLedger, as_of: dt.date) -> Desired:
        rows = ledger.rows()
        return compute_rows(contacts, rows, config=config, packs=packs, registry=registry, as_of=as_of)

    properties = ("email", *(p for p in required_properties(config, packs, registry) if p != "email"))
    return SyncSpec(desired_fields(config, packs), desired_lists(packs), properties, run)


def sync_project(
    config: ProjectConfig,
    platform_name: str,
    *,
    registry: Registry,
    as_of: dt.date,
    hooks: Hooks | None = None,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    wall_clock: WallClock | None = None,
    dry_run: bool = False,
    full: bool = False,
    retry_failed: bool = False,
    progress: Callable[[Progress], None] | None = None,
    force_as_of: bool = False,
    packs: Sequence[Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """``segsync sync``/``plan`` for one configured platform: packs (loaded here unless the
    caller already has them), connection, store, job."""
    from segsync.project.connect import connect
    from segsync.project.packs import load_packs
    from segsync.sync.connect import account_key

    packs = load_packs(config, registry) if packs is None else packs
    spec = project_spec(config, packs, registry)
    platform = connect(config, platform_name, registry=registry, env=env, clock=clock)
    try:
        # A job waiting for a rate budget writes no heartbeat: its lock must outlive the
        # longest wait the policy allows, or the next cron run would take over a live job.
        longest_wait = config.retry.max_rate_wait + config.retry.max_total_seconds
        stale_after = max(DEFAULT_STALE_AFTER, 2 * longest_wait)
        account = account_key(platform)
        with open_store(config, env, wall_clock=wall_clock, stale_after=stale_after) as store:
            _note_other_accounts(store, platform_name, account)
            return run_sync(
                platform,
                spec,
                store=store,
                account=account,
                as_of=as_of,
                hooks=hooks,
                dry_run=dry_run,
                full=full,
                retry_failed=retry_failed,
                progress=progress,
                force_as_of=force_as_of,
                full_every=config.project.full_every,
                # a simulated clock (the demo) adds up every thread's waits: one at a time there
                concurrency=1 if isinstance(clock, SimulatedClock) else config.project.concurrency,
                should_stop=should_stop,
            )
    finally:
        platform.close()


def _note_other_accounts(store: StateStore, platform: str, account: str) -> None:
    """A first job for this account in a store that knows others: say their states stay apart."""
    known = store.accounts(platform)
    if known and account not in known:
        log.warning(
            "%s: first sync of account %s in this project; the state of %s is kept apart and not used",
            platform,
            account,
            ", ".join(sorted(known)),
        )


__all__ = ["open_store", "project_spec", "store_exists", "sync_project"]
