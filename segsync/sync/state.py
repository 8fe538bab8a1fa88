"""The state store: one SQLite file per project (WAL mode, stdlib ``sqlite3``).

It remembers what makes the next sync cheaper and the history readable, never what makes it
right: plans are made against what is really in the CRM, so deleting the file costs a full
resync, never wrong data. It holds:

* remote ids of fields and lists per platform and account (found again by id, so renaming a
  list in the CRM does not break the sync);
* the values last written per contact (for reports and history);
* the purchase cache and its cursor, for incremental purchase pulls;
* job records (status, phase, counts, calls, 429s, retries, error), a checkpoint after every
  applied batch, and the rejections each pull produced;
* per-record failures, retried on the next runs and parked after ``max_failed_runs``
  (``[retry] max_failed_runs``);
* one lock per account, which survives a crash: a lock whose process is dead (same host) or
  whose heartbeat is stale is taken over, a live one raises :class:`JobLocked`.

It never stores a secret, and scrubs e-mail addresses out of every reason it keeps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from segsync.core.models import ContactUpdate, FieldValue, Purchase, RecordFailure, Rejection
from segsync.core.report import JobInfo, JobStatus, SyncReport
from segsync.errors import JobLocked, StateError
from segsync.sync.locks import KernelLocks, same_process_alive
from segsync.sync.locks import LockOwner as LockOwner  # re-exported: tests and harnesses name owners

SCHEMA_VERSION = 2
#: A lock whose owner has not written a heartbeat for this long is considered dead. Owners
#: beat at every checkpoint and between calls, and the longest silent wait is a rate wait
#: (``RetryPolicy.max_rate_wait``, 15 min by default), so this leaves room for it.
DEFAULT_STALE_AFTER = 1800.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS remote_ids (
    platform TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    remote_id TEXT NOT NULL, name TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, account, kind, key)
);
CREATE TABLE IF NOT EXISTS written_values (
    platform TEXT NOT NULL, account TEXT NOT NULL, contact_id TEXT NOT NULL, field TEXT NOT NULL,
    value TEXT, job_id INTEGER NOT NULL, written_at TEXT NOT NULL,
    PRIMARY KEY (platform, account, contact_id, field)
);
CREATE TABLE IF NOT EXISTS purchases (
    platform TEXT NOT NULL, account TEXT NOT NULL, purchase_id TEXT NOT NULL, contact_id TEXT NOT NULL,
    amount TEXT NOT NULL, currency TEXT, closed_at TEXT NOT NULL, modified_at TEXT,
    PRIMARY KEY (platform, account, purchase_id, contact_id)
);
CREATE TABLE IF NOT EXISTS cursors (
    platform TEXT NOT NULL, account TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, account, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL, account TEXT NOT NULL, status TEXT NOT NULL, phase TEXT NOT NULL,
    dry_run INTEGER NOT NULL, full INTEGER NOT NULL, as_of TEXT NOT NULL, resumed_from INTEGER,
    started_at TEXT NOT NULL, finished_at TEXT, heartbeat_at TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0, rate_limited INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0, error TEXT, report TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_account ON jobs (platform, account, id);
CREATE TABLE IF NOT EXISTS checkpoints (
    job_id INTEGER PRIMARY KEY, phase TEXT NOT NULL, step TEXT NOT NULL, batches INTEGER NOT NULL,
    at TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    job_id INTEGER NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_by_job ON rejections (job_id);
CREATE TABLE IF NOT EXISTS failures (
    platform TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL, record_id TEXT NOT NULL,
    operation TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, last_job INTEGER NOT NULL,
    given_up INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (platform, account, kind, record_id, operation)
);
CREATE TABLE IF NOT EXISTS locks (
    platform TEXT NOT NULL, account TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    job_id INTEGER, acquired_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL,
    started TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (platform, account)
);
"""
#: Columns added after schema 1, for stores made by an older segsync.
_ADDED_COLUMNS = {("locks", "started"): "TEXT NOT NULL DEFAULT ''"}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def scrub(text: str) -> str:
    """Drop e-mail addresses from a reason before it is stored (CRM PII stays in the CRM)."""
    return _EMAIL.sub("<email>", text)


class WallClock(Protocol):
    """Calendar time for job records and locks (tests pass :class:`segsync.testing.FakeWallClock`)."""

    def now(self) -> dt.datetime: ...


class SystemWallClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class JobRecord:
    id: int
    platform: str
    account: str
    status: JobStatus
    phase: str
    dry_run: bool
    full: bool
    as_of: dt.date
    resumed_from: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime
    calls: int
    rate_limited: int
    retries: int
    error: str | None
    report: SyncReport | None

    @property
    def duration(self) -> dt.timedelta:
        return (self.finished_at or self.heartbeat_at) - self.started_at


@dataclass(frozen=True)
class FailureRecord:
    platform: str
    account: str
    kind: str
    record_id: str
    operation: str
    reason: str
    attempts: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    given_up: bool


@dataclass(frozen=True)
class Checkpoint:
    job_id: int
    phase: str
    step: str
    batches: int
    at: dt.datetime
    detail: Mapping[str, object]


@dataclass(frozen=True)
class LockInfo:
    owner: LockOwner
    job_id: int | None
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime


class StateStore:
    """The project's state file. Safe to share between threads; several processes may open it."""

    def __init__(
        self,
        path: Path,
        *,
        wall_clock: WallClock | None = None,
        owner: LockOwner | None = None,
        alive: Iterable[int] | None = None,
        stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        """``owner`` and ``alive`` are for tests that play several processes in one:
        ``alive`` lists the pids that count as running (default: ask the OS)."""
        self.path = Path(path)
        self.wall_clock: WallClock = wall_clock or SystemWallClock()
        self.owner = owner or LockOwner.current()
        self._alive = None if alive is None else set(alive)
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._kernel = KernelLocks(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process intact; only an OS crash may lose the
            # last commits, which costs a re-plan against the CRM, never wrong data.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open the state store ({exc.strerror})") from None

    def close(self) -> None:
        with self._lock:
            self._kernel.release_all()
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path}: made by a newer segsync (schema {row[0]}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade segsync or use another state file"
                )
            elif row[0] < SCHEMA_VERSION:
                for (table, column), decl in _ADDED_COLUMNS.items():
                    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION,))

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite failures become one line of guidance (damaged, read-only, busy), no traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE takes the write lock at once, no upgrade deadlocks)."""
        with self._lock, self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        with self._lock, self._guard():
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _now(self) -> str:
        return self.wall_clock.now().isoformat()

    # -- remote ids -----------------------------------------------------------------------

    def remote_ids(self, platform: str, account: str, kind: str) -> dict[str, tuple[str, str]]:
        """``{key: (remote id, name)}`` for ``kind`` ``"list"`` or ``"field"``."""
        rows = self._rows(
            "SELECT key, remote_id, name FROM remote_ids WHERE platform=? AND account=? AND kind=?",
            (platform, account, kind),
        )
        return {r["key"]: (r["remote_id"], r["name"]) for r in rows}

    def set_remote_id(
        self, platform: str, account: str, kind: str, key: str, remote_id: str, name: str
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO remote_ids VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, account, kind, key, remote_id, name, self._now()),
            )

    def forget_remote_id(self, platform: str, account: str, kind: str, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM remote_ids WHERE platform=? AND account=? AND kind=? AND key=?",
                (platform, account, kind, key),
            )

    # -- values written -------------------------------------------------------------------

    def record_written(
        self, platform: str, account: str, job_id: int, updates: Iterable[ContactUpdate]
    ) -> None:
        now = self._now()
        rows = [
            (platform, account, u.contact_id, key, encode_value(v), job_id, now)
            for u in updates
            for key, v in u.values.items()
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO written_values VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def written_values(self, platform: str, account: str) -> dict[str, dict[str, FieldValue]]:
        out: dict[str, dict[str, FieldValue]] = {}
        for r in self._rows(
            "SELECT contact_id, field, value FROM written_values WHERE platform=? AND account=?",
            (platform, account),
        ):
            out.setdefault(r["contact_id"], {})[r["field"]] = decode_value(r["value"])
        return out

    # -- purchases ------------------------------------------------------------------------

    def purchases(self, platform: str, account: str) -> list[Purchase]:
        rows = self._rows(
            "SELECT * FROM purchases WHERE platform=? AND account=? ORDER BY purchase_id, contact_id",
            (platform, account),
        )
        return [
            Purchase(
                id=r["purchase_id"],
                contact_id=r["contact_id"],
                amount=Decimal(r["amount"]),
                currency=r["currency"],
                closed_at=dt.datetime.fromisoformat(r["closed_at"]),
                modified_at=dt.datetime.fromisoformat(r["modified_at"]) if r["modified_at"] else None,
            )
            for r in rows
        ]

    def cursor(self, platform: str, account: str, name: str = "purchases") -> dt.datetime | None:
        rows = self._rows(
            "SELECT value FROM cursors WHERE platform=? AND account=? AND name=?", (platform, account, name)
        )
        return dt.datetime.fromisoformat(rows[0]["value"]) if rows else None

    def set_cursor(
        self, platform: str, account: str, value: dt.datetime | None, name: str = "purchases"
    ) -> None:
        """Move a cursor (None removes it: the next pull is a full one)."""
        with self._tx() as db:
            self._write_cursor(db, platform, account, name, value)

    def _write_cursor(
        self, db: sqlite3.Connection, platform: str, account: str, name: str, value: dt.datetime | None
    ) -> None:
        if value is None:
            db.execute(
                "DELETE FROM cursors WHERE platform=? AND account=? AND name=?", (platform, account, name)
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                (platform, account, name, value.isoformat(), self._now()),
            )

    def save_purchases(
        self,
        platform: str,
        account: str,
        purchases: Sequence[Purchase],
        gone: Iterable[str] = (),
        *,
        replace_all: bool,
        cursor: dt.datetime | None,
    ) -> None:
        """Apply one pulled chunk atomically.

        Every purchase id seen replaces all cached rows of that id (a deal's contacts may have
        changed); ``gone`` ids (retracted, or now rejected) are dropped; ``replace_all`` empties
        the cache first (a full pull). ``cursor`` is stored when given; a full pull without one
        clears it, so the next pull is full again.
        """
        seen = {p.id for p in purchases} | set(gone)
        rows = [
            (
                platform,
                account,
                p.id,
                p.contact_id,
                str(p.amount),
                p.currency,
                p.closed_at.isoformat(),
                p.modified_at.isoformat() if p.modified_at else None,
            )
            for p in purchases
        ]
        with self._tx() as db:
            if replace_all:
                db.execute("DELETE FROM purchases WHERE platform=? AND account=?", (platform, account))
            else:
                db.executemany(
                    "DELETE FROM purchases WHERE platform=? AND account=? AND purchase_id=?",
                    [(platform, account, pid) for pid in seen],
                )
            db.executemany("INSERT OR REPLACE INTO purchases VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if cursor is not None or replace_all:
                self._write_cursor(db, platform, account, "purchases", cursor)

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
                " started_at, heartbeat_at) VALUES (?, ?, 'running', 'pull', ?, ?, ?, ?, ?, ?)",
                (platform, account, int(dry_run), int(full), as_of.isoformat(), resumed, now, now),
            )
            job_id = cur.lastrowid
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
            return cur.rowcount

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

    # -- account lock ---------------------------------------------------------------------
    # The row says who holds the lock; segsync.sync.locks says whether that process lives.

    def _owner_alive(self, holder: LockInfo, kernel: bool | None) -> bool:
        """``kernel``: True if this process just took the account's kernel lock, False if a live
        process holds it, None if kernel locks are unavailable (or tests play the processes)."""
        if self._alive is None and kernel is not None:
            return not kernel
        if (self.wall_clock.now() - holder.heartbeat_at).total_seconds() > self.stale_after:
            return False
        if holder.owner.host != self.owner.host:
            return True  # cannot see another host's processes: only the heartbeat tells
        if self._alive is not None:
            return holder.owner.pid in self._alive
        return same_process_alive(holder.owner)

    def _locked_message(
        self, platform: str, account: str, holder: LockInfo | None, *, held: bool = False
    ) -> str:
        """``held``: the kernel says the owner runs (it shares this kernel, maybe in another container)."""
        if holder is None:
            return f"another segsync process is starting a sync of {platform} ({account}); try again shortly"
        ago = (self.wall_clock.now() - holder.heartbeat_at).total_seconds()
        owner = holder.owner
        who = f"job {holder.job_id}, pid {owner.pid} on {owner.host}, last heartbeat {ago:.0f}s ago"
        text = f"another segsync job ({who}) is syncing {platform} ({account}); wait for it to finish"
        if owner.host == self.owner.host:
            return f"{text} or stop that process (kill {owner.pid})"
        if held:
            return f"{text} or stop it in its container or host ({owner.host}): it still holds the lock file"
        at = holder.heartbeat_at + dt.timedelta(seconds=self.stale_after)
        return (
            f"{text}. It runs on another host, so segsync cannot see whether it is still alive: the "
            f"lock is taken over automatically at {at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
            + f" ({self.stale_after / 60:.0f} min after its last heartbeat). If you are sure it is not "
            f"running (its host or container is gone), take the lock over now: segsync unlock -p {platform}"
        )

    def acquire_lock(self, platform: str, account: str, job_id: int | None = None) -> int | None:
        """Take the account's lock for this process; returns the job id of a dead owner taken over.

        Every job still marked running for the account is marked interrupted: holding the lock
        proves none of them runs.
        """
        kernel = self._kernel.try_take(platform, account)
        try:
            return self._take_row(platform, account, job_id, kernel)
        except BaseException:
            if kernel:
                self._kernel.release(platform, account)
            raise

    def _take_row(self, platform: str, account: str, job_id: int | None, kernel: bool | None) -> int | None:
        now = self._now()
        with self._tx() as db:
            holder = self._holder(db, platform, account)
            if kernel is False and self._alive is None:
                raise JobLocked(self._locked_message(platform, account, holder, held=True))
            taken_over: int | None = None
            if holder is not None:
                if self._owner_alive(holder, kernel):
                    raise JobLocked(self._locked_message(platform, account, holder))
                taken_over = holder.job_id
            o = self.owner
            db.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (platform, account, o.pid, o.host, job_id, now, now, o.started),
            )
            db.execute(
                "UPDATE jobs SET status='interrupted', finished_at=heartbeat_at"
                " WHERE platform=? AND account=? AND status='running' AND (? IS NULL OR id<>?)",
                (platform, account, job_id, job_id),
            )
        return taken_over

    def break_lock(self, platform: str, account: str) -> LockInfo | None:
        """``segsync unlock``: drop a lock whose owner cannot be seen (another host); its job is
        marked interrupted. A live owner on this host is never overridden (:class:`JobLocked`)."""
        kernel = self._kernel.try_take(platform, account)
        try:
            with self._tx() as db:
                holder = self._holder(db, platform, account)
                here = holder is None or holder.owner.host == self.owner.host
                if kernel is False or (here and holder is not None and self._owner_alive(holder, kernel)):
                    raise JobLocked(self._locked_message(platform, account, holder, held=kernel is False))
                db.execute("DELETE FROM locks WHERE platform=? AND account=?", (platform, account))
                db.execute(
                    "UPDATE jobs SET status='interrupted', finished_at=heartbeat_at"
                    " WHERE platform=? AND account=? AND status='running'",
                    (platform, account),
                )
            return holder
        finally:
            self._kernel.release(platform, account)

    def _mine(self) -> tuple[int, str, str]:
        return (self.owner.pid, self.owner.host, self.owner.started)

    def heartbeat(self, platform: str, account: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE locks SET heartbeat_at=? WHERE platform=? AND account=?"
                " AND pid=? AND host=? AND started=?",
                (self._now(), platform, account, *self._mine()),
            )

    def release_lock(self, platform: str, account: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM locks WHERE platform=? AND account=? AND pid=? AND host=? AND started=?",
                (platform, account, *self._mine()),
            )
        self._kernel.release(platform, account)

    def _holder(self, db: sqlite3.Connection, platform: str, account: str) -> LockInfo | None:
        row = db.execute(
            "SELECT pid, host, started, job_id, acquired_at, heartbeat_at FROM locks"
            " WHERE platform=? AND account=?",
            (platform, account),
        ).fetchone()
        if row is None:
            return None
        pid, host, started, job_id, acquired, beat = row
        return LockInfo(
            LockOwner(pid, host, started),
            job_id,
            dt.datetime.fromisoformat(acquired),
            dt.datetime.fromisoformat(beat),
        )

    def lock_holder(self, platform: str, account: str) -> LockInfo | None:
        with self._lock, self._guard():
            return self._holder(self._db, platform, account)

    def locks(self, platform: str) -> dict[str, LockInfo]:
        """Every lock row of ``platform``, by account (``segsync unlock``, ``segsync jobs``)."""
        rows = self._rows("SELECT account FROM locks WHERE platform=?", (platform,))
        found = {r["account"]: self.lock_holder(platform, r["account"]) for r in rows}
        return {k: v for k, v in found.items() if v is not None}


def store_error(path: Path, exc: sqlite3.DatabaseError) -> StateError:
    """What to do about a state store SQLite cannot use, by what went wrong (never SQL or data)."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StateError(
            f"{path}: the state store is read-only here (or its folder is): segsync must write it and "
            f"the -wal and -shm files beside it; make {path.parent} writable for this user, or point "
            "[project] state in segsync.toml at a writable place"
        )
    if "locked" in text or "busy" in text:
        return StateError(
            f"{path}: the state store stayed busy for 10 s (another segsync process is writing it); "
            "run the command again"
        )
    return StateError(
        f"{path}: the state store is damaged ({type(exc).__name__}); move it away and sync again "
        f"(mv {path} {path}.broken): segsync rebuilds it from the CRM, at the cost of one full "
        "resync, never wrong data"
    )


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


# -- typed values as text -------------------------------------------------------------------


def encode_value(value: FieldValue) -> str | None:
    """A FieldValue as text that decodes to the same type (``d:12.50``, ``t:2026-01-15``...)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"d:{value}"
    if isinstance(value, bool):
        raise TypeError("booleans are not field values")
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, dt.date):
        return f"t:{value.isoformat()}"
    return f"s:{value}"


def decode_value(text: str | None) -> FieldValue:
    if text is None:
        return None
    tag, _, body = text.partition(":")
    if tag == "d":
        return Decimal(body)
    if tag == "i":
        return int(body)
    if tag == "t":
        return dt.date.fromisoformat(body)
    return body
