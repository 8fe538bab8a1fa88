"""The state store's two backends behind one connection type: SQLite (a file) and PostgreSQL.

The store's parts write SQLite's SQL (``?`` placeholders, ``INSERT OR REPLACE``, ``INSERT OR
IGNORE``); :class:`PostgresDb` translates it once per statement into PostgreSQL's (``%s``,
``ON CONFLICT ... DO UPDATE``, ``ON CONFLICT DO NOTHING``), with the conflict keys read from
the schema itself. Two things keep the backends alike where it matters:

* **Writers take turns.** SQLite's ``BEGIN IMMEDIATE`` takes the file's write lock; PostgreSQL's
  transactions take one transaction-level advisory lock (:data:`WRITE_LOCK`), so a
  read-then-write transaction (the account lock's check and take) never interleaves with
  another process's.
* **The account lock dies with its holder.** Beside the lock row, SQLite stores flock a file
  (:class:`segsync.sync.locks.KernelLocks`); PostgreSQL stores hold a session-level advisory
  lock (:class:`AdvisoryLocks`), which the server drops when the holder's connection goes, a
  killed process or a lost container included.

A PostgreSQL URL never carries the password: it comes from ``SEGSYNC_STATE_PASSWORD`` (or
libpq's own ``PGPASSWORD``/``.pgpass``), and no message shows more than user, host, port and
database.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from segsync.errors import ConfigError

#: The key of the advisory lock every PostgreSQL write transaction takes (``segsync`` in ASCII).
WRITE_LOCK = 0x73656773796E63
PASSWORD_ENV = "SEGSYNC_STATE_PASSWORD"  # noqa: S105 - a variable name, not a secret


def is_postgres(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def describe(target: str | Path) -> str:
    """Where the store is, for messages: a path, or a URL without any password."""
    if not is_postgres(target):
        return str(target)
    parts = urlsplit(str(target))
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{user}{parts.hostname or 'localhost'}{port}{parts.path}"


class SqliteDb:
    """A SQLite file in WAL mode; the store's SQL as written."""

    dialect = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process intact; only an OS crash may lose the last
        # commits, which costs a re-plan against the CRM, never wrong data.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


def postgres_errors() -> tuple[type[BaseException], ...]:
    """psycopg's errors (asked before connecting: a refused connection is one of them)."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "[state] url names a PostgreSQL store, and psycopg is not installed: "
            "pip install 'segsync[postgres]'"
        ) from None
    return (psycopg.Error,)


class PostgresDb:
    """A PostgreSQL database (psycopg 3, client-side binding as SQLite binds)."""

    dialect = "postgresql"

    def __init__(self, url: str, password: str | None, schema: str) -> None:
        self.errors = postgres_errors()
        import psycopg

        parts = urlsplit(url)
        if parts.password:
            raise ConfigError(
                f"[state] url: {describe(url)} carries a password; remove it and set {PASSWORD_ENV} instead "
                "(secrets come from the environment only)"
            )
        kwargs: dict[str, Any] = {"autocommit": True, "cursor_factory": psycopg.ClientCursor}
        if password:
            kwargs["password"] = password
        self.conn = psycopg.connect(url, **kwargs)
        self.tables = schema_tables(schema)
        self._translated: dict[str, str] = {}  # each statement translated once

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self._sql(sql), _params(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(sql), [_params(r) for r in rows])

    def begin(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.info.transaction_status != 0:  # not idle: in, or failed in, a transaction
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def _sql(self, sql: str) -> str:
        out = self._translated.get(sql)
        if out is None:
            out = self._translated[sql] = translate(sql, self.tables)
        return out


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    # booleans live in INTEGER columns, as in SQLite
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


# -- SQLite's SQL as PostgreSQL's ------------------------------------------------------------------

Tables = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]


@functools.cache
def schema_tables(schema: str) -> Tables:
    """Each table's columns and primary (or first unique) key, read from the schema text."""
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for m in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\);", schema, re.S):
        columns: list[str] = []
        key: tuple[str, ...] = ()
        for part in _split(m[2]):
            head = part.split()[0].upper()
            if head in ("PRIMARY", "UNIQUE"):
                found = re.search(r"\((.*?)\)", part)
                if found and (head == "PRIMARY" or not key):
                    key = tuple(c.strip() for c in found[1].split(","))
            else:
                columns.append(part.split()[0])
                if "PRIMARY KEY" in part.upper():
                    key = (part.split()[0],)
        out[m[1]] = (tuple(columns), key)
    return out


def _split(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in body:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p]


def postgres_schema(schema: str) -> str:
    """The DDL in PostgreSQL's types: auto-numbered ids, bytea, 64-bit integers."""
    out = schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    return _quote_reserved(re.sub(r"\bINTEGER\b", "BIGINT", out).replace("BLOB", "BYTEA"))


def _quote_reserved(sql: str) -> str:
    """Column names PostgreSQL reserves (``jobs.full``) in double quotes."""
    return re.sub(r"(?<![\w.\"])full\b(?!\s*\()", '"full"', sql)


def translate(sql: str, tables: Tables) -> str:
    """One statement of the store in PostgreSQL's SQL."""
    out = _quote_reserved(sql.replace("%", "%%").replace("?", "%s"))
    # SQLite's implicit row order; rows kept in that order (rejections) are only ever inserted
    out = out.replace("ORDER BY rowid", "ORDER BY ctid")
    m = re.match(r"\s*INSERT OR (REPLACE|IGNORE) INTO (\w+)(.*)", out, re.S)
    if m is None:
        return out
    kind, table, rest = m[1], m[2], m[3].rstrip().rstrip(";")
    if kind == "IGNORE":
        return f"INSERT INTO {table}{rest} ON CONFLICT DO NOTHING"
    columns, key = tables[table]
    named = re.match(r"\s*\(([^)]*)\)\s*VALUES", rest)
    if named:
        columns = tuple(c.strip() for c in named[1].split(","))
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    return f"INSERT INTO {table}{rest} ON CONFLICT ({', '.join(key)}) {action}"


# -- account locks that die with their holder ---------------------------------------------------


class AdvisoryLocks:
    """Session-level advisory locks, one per account: :class:`~segsync.sync.locks.KernelLocks`
    for a PostgreSQL store (the same ``try_take``/``release`` contract)."""

    def __init__(self, db: PostgresDb, lock: threading.RLock) -> None:
        self.db = db
        self._lock = lock
        self._held: set[tuple[str, str]] = set()

    @staticmethod
    def key(platform: str, account: str) -> int:
        digest = hashlib.sha256(f"segsync\0{platform}\0{account}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def try_take(self, platform: str, account: str) -> bool | None:
        if (platform, account) in self._held:
            return False  # held by this process, in another job: the kernel lock says the same
        with self._lock:
            row = self.db.execute("SELECT pg_try_advisory_lock(?)", (self.key(platform, account),)).fetchone()
        if not row[0]:
            return False
        self._held.add((platform, account))
        return True

    def holds(self, platform: str, account: str) -> bool:
        return (platform, account) in self._held

    def release(self, platform: str, account: str) -> None:
        if (platform, account) in self._held:
            self._held.discard((platform, account))
            with self._lock:
                self.db.execute("SELECT pg_advisory_unlock(?)", (self.key(platform, account),))

    def release_all(self) -> None:
        for platform, account in list(self._held):
            self.release(platform, account)


__all__ = [
    "PASSWORD_ENV",
    "WRITE_LOCK",
    "AdvisoryLocks",
    "Db",
    "PostgresDb",
    "SqliteDb",
    "describe",
    "is_postgres",
    "postgres_errors",
    "postgres_schema",
    "schema_tables",
    "translate",
]

#: The connection the store's parts write through.
Db = SqliteDb | PostgresDb
