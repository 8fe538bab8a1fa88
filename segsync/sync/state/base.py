"""The state store's foundation: schema and migrations, the connection, transactions, the guard
that turns SQLite failures into guidance, job and lock records, and typed values as text."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, Self

from segsync.core.models import FieldValue
from segsync.core.report import JobStatus, SyncReport
from segsync.errors import StateError
from segsync.sync.locks import KernelLocks
from segsync.sync.locks import LockOwner as LockOwner  # re-exported: tests and harnesses name owners
from segsync.sync.state.db import (
    PASSWORD_ENV,
    AdvisoryLocks,
    Db,
    PostgresDb,
    SqliteDb,
    describe,
    is_postgres,
    postgres_errors,
    postgres_schema,
)

SCHEMA_VERSION = 4
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
CREATE TABLE IF NOT EXISTS ledger_chunks (
    platform TEXT NOT NULL, account TEXT NOT NULL, seq INTEGER NOT NULL, base INTEGER NOT NULL,
    rows INTEGER NOT NULL, written_at TEXT NOT NULL,
    PRIMARY KEY (platform, account, seq)
);
CREATE TABLE IF NOT EXISTS ledger_columns (
    platform TEXT NOT NULL, account TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (platform, account, seq, name)
);
CREATE TABLE IF NOT EXISTS pulls (
    platform TEXT NOT NULL, account TEXT NOT NULL, stream TEXT NOT NULL, token TEXT NOT NULL,
    since TEXT, started TEXT, newest TEXT, ordered INTEGER NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, account, stream)
);
CREATE TABLE IF NOT EXISTS contact_shapes (
    platform TEXT NOT NULL, account TEXT NOT NULL, shape TEXT NOT NULL,
    PRIMARY KEY (platform, account)
);
CREATE TABLE IF NOT EXISTS contact_cache (
    platform TEXT NOT NULL, account TEXT NOT NULL, contact_id TEXT NOT NULL, seq INTEGER NOT NULL,
    rejected INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (platform, account, contact_id)
);
CREATE INDEX IF NOT EXISTS contact_cache_order ON contact_cache (platform, account, seq);
CREATE TABLE IF NOT EXISTS contact_lists (
    platform TEXT NOT NULL, account TEXT NOT NULL, list_key TEXT NOT NULL, list_id TEXT NOT NULL,
    PRIMARY KEY (platform, account, list_key)
);
CREATE TABLE IF NOT EXISTS contact_members (
    platform TEXT NOT NULL, account TEXT NOT NULL, list_key TEXT NOT NULL, list_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (platform, account, list_key, contact_id)
);
CREATE INDEX IF NOT EXISTS contact_members_by_contact ON contact_members (platform, account, contact_id);
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
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, platform TEXT NOT NULL, event_key TEXT NOT NULL,
    kind TEXT NOT NULL, object_id TEXT, received_at TEXT NOT NULL, occurred_at TEXT,
    settled_at TEXT,
    UNIQUE (platform, event_key)
);
CREATE INDEX IF NOT EXISTS webhook_events_pending ON webhook_events (platform, settled_at, seq);
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


class StoreBase:
    """The connection, schema, transactions and error guard every part of the store builds on."""

    def __init__(
        self,
        path: Path | str,
        *,
        wall_clock: WallClock | None = None,
        owner: LockOwner | None = None,
        alive: Iterable[int] | None = None,
        stale_after: float = DEFAULT_STALE_AFTER,
        password: str | None = None,
    ) -> None:
        """``path``: a SQLite file, or a ``postgresql://`` URL (its password in ``password``).
        ``owner`` and ``alive`` are for tests that play several processes in one: ``alive``
        lists the pids that count as running (default: ask the OS)."""
        self.path: Path | str = path if is_postgres(path) else Path(path)
        self.wall_clock: WallClock = wall_clock or SystemWallClock()
        self.owner = owner or LockOwner.current()
        self._alive = None if alive is None else set(alive)
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
        try:
            if isinstance(self.path, Path):
                self._db: Db = SqliteDb(self.path)
                self._kernel: KernelLocks | AdvisoryLocks = KernelLocks(self.path)
            else:
                self._errors = postgres_errors()
                pg = PostgresDb(self.path, password, _SCHEMA)
                self._db, self._kernel = pg, AdvisoryLocks(pg, self._lock)
            self._errors = self._db.errors
            self._migrate()
        except self._errors as exc:
            raise store_error(self.path, exc) from None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open the state store ({exc.strerror})") from None

    def close(self) -> None:
        with self._lock:
            self._kernel.release_all()
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        postgres = self._db.dialect == "postgresql"
        with self._tx() as db:
            schema = postgres_schema(_SCHEMA) if postgres else _SCHEMA
            for statement in filter(str.strip, schema.split(";")):
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
                if not postgres:  # PostgreSQL stores began at schema 4: no older data to move
                    for (table, column), decl in _ADDED_COLUMNS.items():
                        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                        if column not in have:
                            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                    self._upgrade(db, row[0])
                db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION,))

    def _upgrade(self, db: Db, version: int) -> None:
        """Data moves of an older schema, inside the migration's transaction (parts override)."""

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Database failures become one line of guidance (damaged, read-only, busy, unreachable),
        no traceback, never SQL or data."""
        try:
            yield
        except self._errors as exc:
            raise store_error(self.path, exc) from None

    @contextmanager
    def _tx(self) -> Iterator[Db]:
        """One write transaction; writers take turns (SQLite's BEGIN IMMEDIATE takes the write
        lock at once, so no upgrade deadlocks; PostgreSQL takes one advisory lock)."""
        with self._lock, self._guard():
            self._db.begin()
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(*self._errors):
                    self._db.rollback()
                raise
            self._db.commit()

    def _column(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The first column of every row: no dict per row (a list's 100k members are read so)."""
        with self._lock, self._guard():
            return [r[0] for r in self._db.execute(sql, params).fetchall()]

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        with self._lock, self._guard():
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _mine(self) -> tuple[int, str, str]:
        """This process as lock rows name their owner (pid, host, start time)."""
        return (self.owner.pid, self.owner.host, self.owner.started)

    def _now(self) -> str:
        return self.wall_clock.now().isoformat()


def store_error(path: Path | str, exc: BaseException) -> StateError:
    """What to do about a state store the database cannot use, by what went wrong (never SQL or data)."""
    if is_postgres(path):
        return StateError(
            f"{describe(path)}: the PostgreSQL state store failed ({type(exc).__name__}); check the server "
            f"is running and reachable, [state] url and {PASSWORD_ENV}, then run the command again"
        )
    assert isinstance(path, Path)
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
