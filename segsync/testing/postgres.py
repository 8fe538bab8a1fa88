"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, ``postgres`` on
a free loopback port, one fresh database per test, everything removed at the end.

``SEGSYNC_TEST_POSTGRES_URL`` (a server the tests may create databases on) is used instead when
set. Otherwise the server binaries are looked for on PATH and in Debian's
``/usr/lib/postgresql/<version>/bin``; as root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root). :func:`unavailable` says why none can start, for a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

URL_ENV = "SEGSYNC_TEST_POSTGRES_URL"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def unavailable() -> str | None:
    """Why no PostgreSQL server can be had here, or None."""
    if os.environ.get(URL_ENV):
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if _bindir() is None:
        return "no PostgreSQL server binaries (initdb) here: apt-get install postgresql, or set " + URL_ENV
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


class TempPostgres:
    """One server for a test session; :meth:`database` makes a fresh database and returns its URL."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.base = os.environ.get(URL_ENV, "")

    def start(self) -> TempPostgres:
        if self.base:
            return self
        bindir = _bindir()
        assert bindir is not None, unavailable()
        self._dir = tempfile.TemporaryDirectory(prefix="segsync-pg-")
        data = Path(self._dir.name) / "data"
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            shutil.chown(self._dir.name, "postgres")
        run = [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "segsync",
            "--no-sync",
        ]
        subprocess.run(run, check=True, capture_output=True)  # noqa: S603 - the server's own tool
        port = _free_port()
        self._proc = subprocess.Popen(  # noqa: S603
            [
                *as_postgres,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self._dir.name}",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"postgresql://segsync@127.0.0.1:{port}/postgres"
        self._wait()
        return self

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.base, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                    raise
                time.sleep(0.1)

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"segsync_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        head, _, _ = self.base.rpartition("/")
        return f"{head}/{name}"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["URL_ENV", "TempPostgres", "unavailable"]
