"""Who holds an account lock, and whether that process still lives.

The lock itself is a row in the state store (owner, job, heartbeat: what ``segsync jobs`` and
the error messages show). Whether its owner lives is decided here, most reliable first:

1. **A kernel lock** (``flock``) on a small file beside the state store, held by the owner for
   as long as its job runs. The kernel drops it the moment the process dies, however it dies,
   whatever its pid, in whichever container: and every process that shares a SQLite WAL store
   runs on the same kernel (WAL needs shared memory), so a free kernel lock proves the owner dead.
2. Where ``flock`` is not supported: pid *and* process start time (a pid alone is ambiguous:
   pids are reused, and every container's first process is pid 1), on the same host only.
3. Otherwise the heartbeat: a lock not beaten for ``stale_after`` seconds is dead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pid, start time and heartbeat decide
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class LockOwner:
    """The process that holds (or asks for) a lock.

    ``started`` is ``"<boot id>:<start time in clock ticks>"`` (Linux ``/proc``; empty where
    unknown), which tells a reused pid from the process that took the lock.
    """

    pid: int
    host: str
    started: str = ""

    @classmethod
    def current(cls) -> LockOwner:
        pid = os.getpid()
        return cls(pid, socket.gethostname(), process_started(pid))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def boot_id() -> str:
    """This kernel's boot id (shared by every container on the host), or "" where unknown."""
    return (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def process_started(pid: int) -> str:
    """``"<boot id>:<start time in clock ticks>"`` of a process, or "" where unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat or ")" not in stat:
        return ""
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    boot = boot_id()
    return f"{boot}:{fields[19]}" if boot and len(fields) > 19 else ""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def same_process_alive(owner: LockOwner) -> bool:
    """Whether ``owner`` (on this host) still runs: its pid exists with the same start time."""
    if not pid_alive(owner.pid):
        return False
    if not owner.started:
        return True  # recorded without a start time: the pid is all there is to go on
    return process_started(owner.pid) in ("", owner.started)


class KernelLocks:
    """One ``flock``-ed file per account beside the state store (``state.db.lock-<platform>-<hash>``),
    held while a job runs. Its content is nothing: the kernel lock on it is the point."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._held: dict[tuple[str, str], IO[bytes]] = {}

    def _file(self, platform: str, account: str) -> Path:
        digest = hashlib.sha256(f"{platform}\0{account}".encode()).hexdigest()[:16]
        return self.state_path.with_name(f"{self.state_path.name}.lock-{platform}-{digest}")

    def try_take(self, platform: str, account: str) -> bool | None:
        """True: taken now (nobody alive holds it); False: a live process holds it (this one
        included, in another job); None: kernel locks are not available here."""
        if fcntl is None:
            return None
        try:
            fh = open(self._file(platform, account), "ab")  # noqa: SIM115 - held until release
        except OSError:
            return None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        except OSError:  # a filesystem without locks
            fh.close()
            return None
        self.release(platform, account)
        self._held[(platform, account)] = fh
        return True

    def holds(self, platform: str, account: str) -> bool:
        return (platform, account) in self._held

    def release(self, platform: str, account: str) -> None:
        fh = self._held.pop((platform, account), None)
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()  # closing drops the flock

    def release_all(self) -> None:
        for platform, account in list(self._held):
            self.release(platform, account)
