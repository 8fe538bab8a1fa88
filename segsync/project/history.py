"""What ``segsync jobs``, ``segsync jobs show N`` and ``segsync unlock`` do: the state store read
back for people (job history, rejections, failures) and the one manual repair it allows."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from segsync.errors import ConfigError, JobLocked
from segsync.project.app import find_config, selected_platforms
from segsync.project.config import load_config
from segsync.project.output import table

if TYPE_CHECKING:
    from segsync.sync.state import FailureRecord, JobRecord, StateStore


def _open(args: argparse.Namespace) -> StateStore | None:
    from segsync.project.run import open_store, store_exists

    config = load_config(find_config(args.config))
    if not store_exists(config):
        print(f"no jobs yet ({config.state_path} does not exist)")
        return None
    return open_store(config)


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _status(job: JobRecord) -> str:
    return job.status + (" (dry run)" if job.dry_run else "")


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def jobs(args: argparse.Namespace) -> int:
    if getattr(args, "job", None) is not None:
        return show_job(args)
    store = _open(args)
    if store is None:
        return 0
    with store:
        records = store.recent_jobs(args.limit)
        headers = [
            "job",
            "platform",
            "status",
            "phase",
            "started",
            "took",
            "written",
            "calls",
            "429s",
            "error",
        ]
        rows = [
            (
                j.id,
                j.platform,
                _status(j),
                j.phase,
                j.started_at.strftime("%Y-%m-%d %H:%M"),
                _duration(j.duration),
                j.report.contacts_written if j.report else "-",
                j.calls,
                j.rate_limited,
                _short(j.error),
            )
            for j in records
        ]
        print(table(headers, rows))
        if any(j.error and len(j.error) > 60 for j in records):
            print("(errors are cut short here; `segsync jobs show N` prints one job whole)")
        waiting = store.failures(given_up=False)
        parked = store.failures(given_up=True)
        latest = next((j for j in records if not j.dry_run), None)
        rejections = store.rejections(latest.id) if latest and args.rejections else []
    if rejections and latest is not None:
        print(f"\nrecords rejected by job {latest.id} (kept out of the sync, never written):")
        print(table(["kind", "record", "reason"], [(r.kind, r.record_id, r.reason) for r in rejections]))
    _print_failures(waiting, parked)
    return 0


def _print_failures(waiting: Sequence[FailureRecord], parked: Sequence[FailureRecord]) -> None:
    for title, items in (("waiting for retry", waiting), ("given up (use sync --retry-failed)", parked)):
        if not items:
            continue
        print(f"\nrecords {title}:")
        rows = [(f.platform, f.kind, f.record_id, f.operation, f.attempts, f.reason) for f in items[:50]]
        print(table(["platform", "kind", "record", "operation", "attempts", "reason"], rows))
        if len(items) > 50:
            print(f"... and {len(items) - 50} more")
    if not waiting and not parked:
        print("\nno records waiting for retry")


def show_job(args: argparse.Namespace) -> int:
    """``segsync jobs show N``: one job whole, error and counts included."""
    from segsync.errors import StateError

    store = _open(args)
    if store is None:
        return 1
    with store:
        try:
            job = store.job(args.job)
        except StateError:
            raise ConfigError(f"no job {args.job} in {store.path}; `segsync jobs` lists them") from None
        rejections = store.rejections(job.id)
        checkpoint = store.last_checkpoint(job.id)
    r = job.report
    lines = [
        f"job {job.id}: {job.platform} ({job.account}), {_status(job)}",
        f"  as of {job.as_of}; {'full pull; ' if job.full else ''}phase {job.phase}",
        f"  started {job.started_at:%Y-%m-%d %H:%M:%S %Z}, "
        + (f"finished {job.finished_at:%Y-%m-%d %H:%M:%S %Z}" if job.finished_at else "not finished")
        + f" ({_duration(job.duration)})",
    ]
    if job.resumed_from is not None:
        lines.append(f"  resumed job {job.resumed_from}")
    lines.append(f"  API calls {job.calls}, 429s {job.rate_limited}, retries {job.retries}")
    if r is not None:
        lines.append(
            f"  pulled {r.contacts_text()}, {r.purchases_pulled} purchases; rejected {r.rejected}; "
            f"wrote {r.contacts_written} contacts, +{r.members_added}/-{r.members_removed} list members; "
            f"{r.failed_records} record(s) failed"
        )
    if checkpoint is not None:
        lines.append(f"  last checkpoint: {checkpoint.step} ({checkpoint.batches} batches)")
    if job.error:
        lines.append(f"  error: {job.error}")
    print("\n".join(lines))
    if rejections:
        print(f"\n{len(rejections)} record(s) rejected:")
        print(table(["kind", "record", "reason"], [(x.kind, x.record_id, x.reason) for x in rejections]))
    return 0


def unlock(args: argparse.Namespace) -> int:
    """``segsync unlock``: take over by hand a lock whose owner segsync cannot see (another host
    or container). A live owner on this host is never overridden."""
    from segsync.project.run import open_store, store_exists

    config = load_config(find_config(args.config))
    if not store_exists(config):
        print(f"nothing to unlock ({config.state_path} does not exist)")
        return 0
    status = 0
    with open_store(config) as store:
        for name in selected_platforms(config, args.platform):
            held = store.locks(name)
            if not held:
                print(f"{name}: no lock held")
            for account, info in held.items():
                try:
                    store.break_lock(name, account)
                except JobLocked as err:
                    print(f"segsync: error: {err}", file=sys.stderr)
                    status = err.exit_code
                    continue
                owner, beat = info.owner, info.heartbeat_at
                print(
                    f"{name}: released the lock of job {info.job_id} (pid {owner.pid} on {owner.host}, "
                    f"last heartbeat {beat:%Y-%m-%d %H:%M:%S %Z}); the next sync resumes its work"
                )
    return status


__all__ = ["jobs", "show_job", "unlock"]
