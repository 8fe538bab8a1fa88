"""Job records, checkpoints, rejections and per-record failures."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from segsync.core.models import RecordFailure, Rejection
from segsync.core.report import JobInfo, SyncReport
from segsync.errors import StateError
from segsync.sync.state.base import Checkpoint, FailureRecord, JobRecord, StoreBase, scrub


class JobStore(StoreBase):
    """The history of jobs and the records waiting for retry."""

    # -- jobs -----------------------------------------------------------------------------

    def start_job(self, platform: str, account: str, *, as_of: dt.date, dry_run: bool, full: bool) -> JobInfo:
        """Record a new running job; it resumes the last one if that paused or was interrupted.

        Call it after :meth:`acquire_lock` (dry runs take no lock): the lock then names the job.
        """
        now = self._now()
        with self._tx() as db:
            prev = db.execute(
                "SELECT id, status FROM jobs WHERE platform=? AND account=? AND dry_run=0"
                " ORDER BY id DESC LIMIT 1",
                (platform, account),
            ).fetchone()
            resumed = (
                prev[0] if prev is not None and prev[1] in ("paused", "interrupted") and not dry_run else None
            )
            cur = db.execute(
                "INSERT INTO jobs (platform, account, status, phase, dry_run, full, as_of, resumed_from,"
                " started_at, heartbeat_at) VALUES (?, ?, 'running', 'pull', ?, ?, ?, ?, ?, ?) RETURNING id",
                (platform, account, int(dry_run), int(full), as_of.isoformat(), resumed, now, now),
            )
            job_id = int(cur.fetchone()[0])
            if not dry_run:  # the lock this process holds for the account now names its job
                db.execute(
                    "UPDATE locks SET job_id=? WHERE platform=? AND account=? AND pid=? AND host=?"
                    " AND started=?",
                    (job_id, platform, account, *self._mine()),
                )
        assert job_id is not None
        return JobInfo(
            job_id=job_id, platform=platform, as_of=as_of, dry_run=dry_run, full=full, resumed_from=resumed
        )

    def update_job(self, report: SyncReport) -> None:
        """Save a running job's progress (phase, counts, calls) from its report."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET phase=?, heartbeat_at=?, calls=?, rate_limited=?, retries=?, report=?"
                " WHERE id=?",
                (
                    report.phase,
                    self._now(),
                    report.calls,
                    report.rate_limited,
                    report.retries,
                    report.model_dump_json(),
                    report.job.job_id,
                ),
            )

    def finish_job(self, report: SyncReport) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status=?, phase=?, finished_at=?, heartbeat_at=?, calls=?, rate_limited=?,"
                " retries=?, error=?, report=? WHERE id=?",
                (
                    report.status,
                    report.phase,
                    (report.finished_at or self.wall_clock.now()).isoformat(),
                    self._now(),
                    report.calls,
                    report.rate_limited,
                    report.retries,
                    scrub(report.error) if report.error else None,
                    report.model_dump_json(),
                    report.job.job_id,
                ),
            )

    def checkpoint(
        self, job_id: int, phase: str, step: str, batches: int, detail: Mapping[str, object]
    ) -> None:
        """The job applied a batch: remember where it is (and show it is alive)."""
        now = self._now()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, phase, step, batches, now, json.dumps(detail, sort_keys=True, default=str)),
            )
            db.execute("UPDATE jobs SET phase=?, heartbeat_at=? WHERE id=?", (phase, now, job_id))
            db.execute(
                "UPDATE locks SET heartbeat_at=? WHERE job_id=? AND pid=? AND host=? AND started=?",
                (now, job_id, *self._mine()),
            )

    def last_checkpoint(self, job_id: int) -> Checkpoint | None:
        rows = self._rows("SELECT * FROM checkpoints WHERE job_id=?", (job_id,))
        if not rows:
            return None
        r = rows[0]
        return Checkpoint(
            r["job_id"],
            r["phase"],
            r["step"],
            r["batches"],
            dt.datetime.fromisoformat(r["at"]),
            json.loads(r["detail"]),
        )

    def job(self, job_id: int) -> JobRecord:
        rows = self._rows("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise StateError(f"{self.path}: no job {job_id}")
        return _job(rows[0])

    def accounts(self, platform: str) -> frozenset[str]:
        """The accounts of ``platform`` this store has run jobs for."""
        rows = self._rows("SELECT DISTINCT account FROM jobs WHERE platform=?", (platform,))
        return frozenset(r["account"] for r in rows)

    def recent_jobs(self, limit: int = 10, *, platform: str | None = None) -> list[JobRecord]:
        """Newest first, for ``segsync jobs``."""
        where, params = ("WHERE platform=?", [platform]) if platform else ("", [])
        rows = self._rows(f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_job(r) for r in rows]

    def record_rejections(self, job_id: int, rejections: Iterable[Rejection]) -> None:
        rows = [(job_id, r.kind, r.record_id, scrub(r.reason)) for r in rejections]
        with self._tx() as db:
            db.executemany("INSERT INTO rejections VALUES (?, ?, ?, ?)", rows)

    def rejections(self, job_id: int) -> list[Rejection]:
        rows = self._rows(
            "SELECT kind, record_id, reason FROM rejections WHERE job_id=? ORDER BY rowid", (job_id,)
        )
        return [Rejection(kind=r["kind"], record_id=r["record_id"], reason=r["reason"]) for r in rows]

    # -- per-record failures --------------------------------------------------------------

    def record_failures(
        self,
        platform: str,
        account: str,
        job_id: int,
        kind: str,
        operation: str,
        failures: Iterable[RecordFailure],
        *,
        max_failed_runs: int,
    ) -> None:
        """Count one failed run per record and job; park a record after ``max_failed_runs``."""
        now = self._now()
        with self._tx() as db:
            for f in failures:
                key = (platform, account, kind, f.record_id, operation)
                row = db.execute(
                    "SELECT attempts, last_job FROM failures WHERE platform=? AND account=? AND kind=?"
                    " AND record_id=? AND operation=?",
                    key,
                ).fetchone()
                attempts = 1 if row is None else row[0] + (0 if row[1] == job_id else 1)
                db.execute(
                    "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (platform, account, kind, record_id, operation) DO UPDATE SET"
                    " reason=excluded.reason, attempts=excluded.attempts, last_seen=excluded.last_seen,"
                    " last_job=excluded.last_job, given_up=excluded.given_up",
                    (*key, scrub(f.reason), attempts, now, now, job_id, int(attempts >= max_failed_runs)),
                )

    def clear_failures(self, platform: str, account: str, operation: str, record_ids: Iterable[str]) -> None:
        """These records went through: forget their failures for ``operation``."""
        with self._tx() as db:
            db.executemany(
                "DELETE FROM failures WHERE platform=? AND account=? AND operation=? AND record_id=?",
                [(platform, account, operation, r) for r in record_ids],
            )

    def forget_failures_except(self, platform: str, account: str, live_ids: Iterable[str]) -> int:
        """Drop failures of records that no longer exist in the CRM; returns how many."""
        live = set(live_ids)
        rows = self._rows(
            "SELECT DISTINCT record_id FROM failures WHERE platform=? AND account=?", (platform, account)
        )
        dead = [r["record_id"] for r in rows if r["record_id"] not in live]
        with self._tx() as db:
            db.executemany(
                "DELETE FROM failures WHERE platform=? AND account=? AND record_id=?",
                [(platform, account, r) for r in dead],
            )
        return len(dead)

    def held_records(self, platform: str, account: str) -> frozenset[tuple[str, str]]:
        """``(operation, record id)`` pairs parked after too many failed runs."""
        rows = self._rows(
            "SELECT operation, record_id FROM failures WHERE platform=? AND account=? AND given_up=1",
            (platform, account),
        )
        return frozenset((r["operation"], r["record_id"]) for r in rows)

    def release_given_up(self, platform: str, account: str) -> int:
        """``--retry-failed``: parked records become eligible again, with a fresh count."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE failures SET given_up=0, attempts=0 WHERE platform=? AND account=? AND given_up=1",
                (platform, account),
            )
            return int(cur.rowcount)

    def failures(
        self, *, platform: str | None = None, account: str | None = None, given_up: bool | None = None
    ) -> list[FailureRecord]:
        """Records waiting for retry (``given_up=False``) or parked (``True``), newest first."""
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (("platform", platform), ("account", account)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        if given_up is not None:
            clauses.append("given_up=?")
            params.append(int(given_up))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM failures {where} ORDER BY last_seen DESC, record_id", params)
        return [
            FailureRecord(
                platform=r["platform"],
                account=r["account"],
                kind=r["kind"],
                record_id=r["record_id"],
                operation=r["operation"],
                reason=r["reason"],
                attempts=r["attempts"],
                first_seen=dt.datetime.fromisoformat(r["first_seen"]),
                last_seen=dt.datetime.fromisoformat(r["last_seen"]),
                given_up=bool(r["given_up"]),
            )
            for r in rows
        ]


def _job(r: Mapping[str, Any]) -> JobRecord:
    return JobRecord(
        id=r["id"],
        platform=r["platform"],
        account=r["account"],
        status=r["status"],
        phase=r["phase"],
        dry_run=bool(r["dry_run"]),
        full=bool(r["full"]),
        as_of=dt.date.fromisoformat(r["as_of"]),
        resumed_from=r["resumed_from"],
        started_at=dt.datetime.fromisoformat(r["started_at"]),
        finished_at=dt.datetime.fromisoformat(r["finished_at"]) if r["finished_at"] else None,
        heartbeat_at=dt.datetime.fromisoformat(r["heartbeat_at"]),
        calls=r["calls"],
        rate_limited=r["rate_limited"],
        retries=r["retries"],
        error=r["error"],
        report=SyncReport.model_validate_json(r["report"]) if r["report"] else None,
    )
