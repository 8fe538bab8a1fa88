"""Issue 7.3: a dead lock owner is recognised at once on the same host, whatever its pid.

These run with the real OS view (no ``alive=`` injection): real processes, real kernel locks.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segsync.cli import main
from segsync.errors import JobLocked
from segsync.sync.locks import KernelLocks, LockOwner, process_started
from segsync.sync.state import StateStore
from segsync.testing import FakeWallClock

AS_OF = dt.date(2026, 1, 15)
HOST = socket.gethostname()


def leave_lock(path: Path, owner: LockOwner) -> int:
    """A job of ``owner`` that died holding the lock: its row stays, its kernel lock is gone."""
    with StateStore(path, owner=owner) as store:
        store.acquire_lock("fake", "fake:1")
        return store.start_job("fake", "fake:1", as_of=AS_OF, dry_run=False, full=False).job_id


def test_a_lock_left_by_pid_1_of_a_dead_container_is_taken_over_at_once(tmp_path):
    """Every container's first process is pid 1: the next container's segsync has the dead
    owner's pid, alive (itself). Today's main waited 40 minutes for the heartbeat."""
    path = tmp_path / "state.db"
    dead = leave_lock(path, LockOwner(os.getpid(), HOST, "a-boot-long-ago:12345"))
    with StateStore(path) as store:
        assert store.acquire_lock("fake", "fake:1") == dead
        assert store.job(dead).status == "interrupted"


def test_a_killed_process_is_seen_dead_at_once_and_a_live_one_is_not(tmp_path):
    path = tmp_path / "state.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from segsync.sync.state import StateStore
        store = StateStore({str(path)!r})
        store.acquire_lock("fake", "fake:1")
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with StateStore(path) as store, pytest.raises(JobLocked) as err:
            store.acquire_lock("fake", "fake:1")
        assert f"kill {child.pid}" in str(err.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with StateStore(path) as store:
        assert store.acquire_lock("fake", "fake:1") is None  # no job was attached
        assert store.lock_holder("fake", "fake:1").owner == LockOwner.current()


def test_without_kernel_locks_a_reused_pid_is_told_by_its_start_time(tmp_path, monkeypatch):
    monkeypatch.setattr(KernelLocks, "try_take", lambda self, platform, account: None)
    path = tmp_path / "state.db"
    dead = leave_lock(path, LockOwner(os.getpid(), HOST, "boot:1"))  # my pid, another process's start
    with StateStore(path) as store:
        assert store.acquire_lock("fake", "fake:1") == dead
        # The same process (same pid and start time) still holds it: refused.
        with StateStore(path) as again, pytest.raises(JobLocked):
            again.acquire_lock("fake", "fake:1")
    assert process_started(os.getpid())  # this test needs /proc: Linux


def test_a_lock_held_from_another_container_is_live_whatever_its_host_says(tmp_path):
    path = tmp_path / "state.db"
    with StateStore(path, owner=LockOwner(1, "pod-7f9c")) as remote:
        remote.acquire_lock("fake", "fake:1")
        with StateStore(path) as store, pytest.raises(JobLocked) as err:
            store.acquire_lock("fake", "fake:1")
    assert "stop it in its container or host (pod-7f9c)" in str(err.value)


def test_another_hosts_lock_says_when_it_is_taken_over_and_how_to_do_it_now(tmp_path, monkeypatch):
    monkeypatch.setattr(KernelLocks, "try_take", lambda self, platform, account: None)  # e.g. no flock
    path = tmp_path / "state.db"
    wall = FakeWallClock()
    with StateStore(path, wall_clock=wall, owner=LockOwner(1, "pod-7f9c")) as remote:
        remote.acquire_lock("fake", "fake:1")
        beat = wall.now()
    wall.advance(120)
    with StateStore(path, wall_clock=wall, stale_after=1800) as store, pytest.raises(JobLocked) as err:
        store.acquire_lock("fake", "fake:1")
    text = str(err.value)
    at = beat + dt.timedelta(seconds=1800)
    assert f"taken over automatically at {at:%Y-%m-%d %H:%M:%S}" in text
    assert "segsync unlock -p fake" in text
    assert "pod-7f9c" in text


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "segsync.toml").write_text("[platforms.hubspot]\n", encoding="utf-8")
    return tmp_path / ".segsync" / "state.db"


def test_segsync_unlock_takes_over_another_hosts_lock(project, capsys):
    with StateStore(project, owner=LockOwner(1, "pod-7f9c")) as remote:
        remote.acquire_lock("hubspot", "hubspot:42")
        job = remote.start_job("hubspot", "hubspot:42", as_of=AS_OF, dry_run=False, full=False).job_id
    assert main(["unlock"]) == 0
    out = capsys.readouterr().out
    assert f"released the lock of job {job} (pid 1 on pod-7f9c" in out
    with StateStore(project) as store:
        assert store.lock_holder("hubspot", "hubspot:42") is None
        assert store.job(job).status == "interrupted"
    assert main(["unlock"]) == 0
    assert "hubspot: no lock held" in capsys.readouterr().out


def test_segsync_unlock_never_overrides_a_live_owner_here(project, capsys):
    with StateStore(project) as live:
        live.acquire_lock("hubspot", "hubspot:42")
        assert main(["unlock"]) == 1
        err = capsys.readouterr().err
        assert "another segsync job" in err
        assert live.lock_holder("hubspot", "hubspot:42") is not None


def test_jobs_show_takes_the_config_before_or_after_show(project, capsys, tmp_path, monkeypatch):
    with StateStore(project) as store:
        job = store.start_job("hubspot", "hubspot:42", as_of=AS_OF, dry_run=True, full=False).job_id
    monkeypatch.chdir(tmp_path.parent)
    config = str(tmp_path / "segsync.toml")
    for argv in (["jobs", "show", str(job), "-c", config], ["jobs", "-c", config, "show", str(job)]):
        assert main(argv) == 0
        assert f"job {job}: hubspot (hubspot:42)" in capsys.readouterr().out
