"""The account lock: a row saying who holds it; :mod:`segsync.sync.locks` says whether they live."""

from __future__ import annotations

import datetime as dt

from segsync.errors import JobLocked
from segsync.sync.locks import LockOwner, same_process_alive
from segsync.sync.state.base import LockInfo, StoreBase
from segsync.sync.state.db import Db


class LockStore(StoreBase):
    """One lock per platform account, surviving a crash."""

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

    def _holder(self, db: Db, platform: str, account: str) -> LockInfo | None:
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
