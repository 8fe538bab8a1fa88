"""Issue 7.6: a damaged, read-only or busy state store is one line of guidance, never a traceback."""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
from pathlib import Path

import pytest

from segsync.cli import main
from segsync.core.models import Rejection
from segsync.errors import StateError
from segsync.sync.state import StateStore

AS_OF = dt.date(2026, 1, 15)


def filled_store(path: Path) -> None:
    with StateStore(path) as store:
        for n in range(40):
            info = store.start_job("hubspot", "hubspot:1", as_of=AS_OF, dry_run=True, full=False)
            store.record_rejections(
                info.job_id,
                [Rejection(kind="purchase", record_id=f"d{n}-{i}", reason="x" * 200) for i in range(20)],
            )
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "segsync.toml").write_text("[platforms.hubspot]\n", encoding="utf-8")
    return tmp_path / ".segsync" / "state.db"


def scribble(path: Path, seed: int = 7) -> None:
    """Random bytes over the middle of every page but the first (the header stays readable)."""
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):
        for i in range(start + 200, min(start + 2000, len(data))):
            data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))


def test_a_damaged_store_says_to_move_it_away(project, capsys):
    filled_store(project)
    scribble(project)
    status = main(["jobs", "--rejections"])
    err = capsys.readouterr().err
    assert status == 1
    assert "internal error" not in err
    assert "damaged" in err
    assert f"mv {project} {project}.broken" in err
    assert len(err.strip().splitlines()) == 1


def test_a_store_that_is_not_a_database_says_the_same(project, capsys):
    project.parent.mkdir(parents=True)
    project.write_bytes(os.urandom(8192))
    assert main(["jobs"]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err
    assert "internal error" not in err


def test_a_read_only_store_is_read_but_a_write_says_what_to_make_writable(project, capsys, monkeypatch):
    from segsync.sync.state import LockOwner

    filled_store(project)
    with StateStore(project, owner=LockOwner(9, "another-host")) as other:
        other.acquire_lock("hubspot", "hubspot:1")
    real_connect = sqlite3.connect

    def read_only(path, *args, **kwargs):  # what a read-only mount or file gives SQLite
        kwargs["uri"] = True
        return real_connect(f"file:{path}?mode=ro", *args, **kwargs)

    monkeypatch.setattr("segsync.sync.state.base.sqlite3.connect", read_only)
    assert main(["jobs"]) == 0  # reading needs no write access
    capsys.readouterr()
    assert main(["unlock"]) == 1
    err = capsys.readouterr().err
    assert "read-only" in err
    assert "[project] state" in err
    assert "internal error" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_write_refused_mid_job_is_guidance_too(tmp_path):
    path = tmp_path / "state.db"
    filled_store(path)
    store = StateStore(path)
    store._db.conn.close()
    store._db.conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    with pytest.raises(StateError, match="read-only"):
        store.set_cursor("hubspot", "hubspot:1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert store.recent_jobs(1)  # reads still work
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_folder_without_the_patch(project, capsys):
    filled_store(project)
    project.chmod(0o444)
    project.parent.chmod(0o555)
    try:
        assert main(["jobs"]) == 1
        assert "read-only" in capsys.readouterr().err
    finally:
        project.parent.chmod(0o755)
        project.chmod(0o644)
