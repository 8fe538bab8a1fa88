"""A purchase pull, saved to the account's ledger as it runs.

:class:`PurchasePull` saves chunks with a cursor when the platform yields purchases in
modification order: a pull cut short resumes from that cursor. :class:`ResumablePull` is for
platforms that hand out a page token (``resume_tokens``): chunks are saved with the token
whatever the order, so a pull spread over several jobs (a rate budget spent every hour, or
a CRM that ignores the requested sort) always finishes.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segsync.core.models import PullProgress, Purchase, PurchaseRetracted, Rejection
from segsync.core.report import SyncReport
from segsync.core.text import human_duration
from segsync.sync.platform import Platform, PurchaseRecord, ResumablePurchases
from segsync.sync.state import AccountLedger, AccountStore, PullState, StateStore

log = logging.getLogger("segsync.engine")

#: The cursor that remembers when the last full purchase pull ended (see ``full_every``).
FULL_PULL = "purchases.full"
#: The purchase cursor is set this far before the newest modification seen: a purchase
#: modified in the same instant as the last one pulled is fetched again, never missed.
CURSOR_OVERLAP = dt.timedelta(seconds=1)
#: How far the CRM's clock may run behind this host's, for where a full pull began.
FULL_PULL_CLOCK_MARGIN = dt.timedelta(minutes=5)


def _take(rec: PurchaseRecord, buffer: list[Purchase], gone: list[str]) -> Purchase | None:
    """Buffer one pulled record: a purchase (returned), or the id a retraction takes out, or a
    rejected purchase (its last good version must not linger in the ledger); a watermark
    (:class:`PullProgress`) holds nothing."""
    if isinstance(rec, Purchase):
        buffer.append(rec)
        return rec
    if isinstance(rec, PullProgress):
        return None
    if isinstance(rec, PurchaseRetracted):
        gone.append(rec.id)
    elif rec.kind == "purchase":
        gone.append(rec.record_id)
    return None


def _in_order(purchase: Purchase | PullProgress, newest: dt.datetime | None) -> bool:
    """Whether a purchase (or a watermark) came in modification order (none without a
    modification time)."""
    stamp = purchase.modified_at
    return stamp is not None and (newest is None or stamp >= newest)


def _later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    """The later of two times, either of them unknown."""
    return a if b is None or (a is not None and a >= b) else b


def _cursor(newest: dt.datetime | None, since: dt.datetime | None) -> dt.datetime | None:
    """The cursor after a pull whose safe newest change is ``newest``: a little before it
    (:data:`CURSOR_OVERLAP`), never before where the pull started."""
    if newest is None:
        return since
    moved = newest - CURSOR_OVERLAP
    return moved if since is None or moved > since else since


@dataclass
class PurchasePull:
    """Saves a purchase pull to the cache in chunks while it runs (see :data:`PURCHASE_CHUNK`)."""

    state: AccountStore
    since: dt.datetime | None
    incremental: bool
    chunk: int
    pulled: int = 0
    buffer: list[Purchase] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    newest: dt.datetime | None = None
    in_order: bool = True
    first_flush: bool = True
    #: A full pull that cannot be saved as it goes spills its chunks as pending ones.
    spilled: bool = False
    #: When the pull began (wall clock), and the newest change it saw in any order.
    started: dt.datetime | None = None
    latest: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.since is None:
            self.state.discard_pull()  # what a full pull killed earlier left pending
            self.started = self.state.store.wall_clock.now()

    def add(self, rec: PurchaseRecord) -> None:
        purchase = _take(rec, self.buffer, self.gone)
        stamped = rec if isinstance(rec, PullProgress) else purchase
        if stamped is not None:
            self.latest = _later(self.latest, stamped.modified_at)
        if isinstance(rec, PullProgress):
            if self.in_order and _in_order(rec, self.newest):
                self.newest = rec.modified_at
        elif purchase is not None:
            self.pulled += 1
            if _in_order(purchase, self.newest):
                self.newest = purchase.modified_at
            else:
                if self.in_order and not self.first_flush:
                    # A cursor saved mid-pull assumed the order; take it back, so a pull cut
                    # short from here restarts where this one started.
                    self.state.set_cursor(self.since)
                self.in_order = False
        if len(self.buffer) < self.chunk:
            return
        if self.incremental and self.in_order:
            self.flush()
        elif self.since is None and self.first_flush:
            # A full pull out of order (HubSpot pages deals by id) cannot keep a cursor: its
            # chunks wait as pending ones and replace the ledger when it ends.
            self.state.save_pending_chunk(self.buffer, self.gone)
            self.buffer, self.gone, self.spilled = [], [], True

    def cursor(self) -> dt.datetime | None:
        if self.incremental and self.since is None and not self.in_order and self.started is not None:
            # A full pull out of order (HubSpot lists deals by id) read every deal as it was
            # when its page came: only a change after the pull began can have been missed. So
            # the next pull starts there (less a margin for the CRM's clock), or at the newest
            # change seen if that is older; the in-order prefix alone could be any old change,
            # and the first incremental pull read again most of the account.
            began = self.started - FULL_PULL_CLOCK_MARGIN
            return _cursor(min(began, self.latest) if self.latest else began, None)
        return _cursor(self.newest if self.incremental else None, self.since)

    def interrupted(self) -> None:
        """Keep what came in (a pause mid-pull must not cost the pages already fetched), but
        only when the order makes the cursor safe; else the next pull starts over."""
        if self.incremental and self.in_order and (self.buffer or self.gone):
            self.flush()

    def finish(self) -> None:
        if self.spilled:
            self.state.finish_pull(self.buffer, self.gone, full=True, cursor=self.cursor())
            self.buffer, self.gone, self.first_flush = [], [], False
            return
        self.flush()

    def flush(self) -> None:
        """Save what was pulled so far. Mid-pull only when the order makes the cursor safe."""
        self.state.save_purchases(
            self.buffer,
            self.gone,
            replace_all=self.first_flush and self.since is None,
            cursor=self.cursor(),
        )
        self.first_flush = False
        self.buffer, self.gone = [], []


@dataclass
class ResumablePull:
    """A purchase pull that saves, with each chunk, the platform's page token to resume from.

    A full pull's chunks stay pending until it ends, then replace the ledger at once. The
    cursor it leaves: when every purchase came in modification order, the newest change seen
    (a purchase changed mid-pull moves to the end and is read again); otherwise no later than
    the newest change its first chunk saw, so whatever changed after the pull began (pages
    already read may have changed, between jobs too) is pulled again next time.
    """

    state: AccountStore
    since: dt.datetime | None
    chunk: int
    token: Callable[[], str | None]
    started: dt.datetime | None = None
    newest: dt.datetime | None = None
    ordered: bool = True
    begun: bool = False
    pulled: int = 0
    buffer: list[Purchase] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    @classmethod
    def resume(
        cls, state: AccountStore, saved: PullState, chunk: int, token: Callable[[], str | None]
    ) -> ResumablePull:
        return cls(state, saved.since, chunk, token, saved.started, saved.newest, saved.ordered, begun=True)

    def add(self, rec: PurchaseRecord) -> None:
        if not self.begun and self.token() is not None:
            self.begun, self.started = True, self.newest  # the first page is read: where it began
        purchase = _take(rec, self.buffer, self.gone)
        if isinstance(rec, PullProgress):
            if self.ordered and _in_order(rec, self.newest):
                self.newest = rec.modified_at
        elif purchase is not None:
            self.pulled += 1
            if _in_order(purchase, self.newest):
                self.newest = purchase.modified_at
            else:
                self.ordered = False
        if len(self.buffer) >= self.chunk:
            self.save()

    def save(self) -> None:
        """Save what came in with the token of the page reached (a page read again after a
        resume is harmless: a purchase id's newest rows replace its older ones)."""
        token = self.token()
        if token is None:
            return  # no page finished yet: nothing to resume from, keep buffering
        self.state.save_pull_chunk(
            self.buffer, self.gone, PullState(token, self.since, self.started, self.newest, self.ordered)
        )
        self.buffer, self.gone = [], []

    def cursor(self) -> dt.datetime | None:
        newest = self.newest
        if not self.ordered and self.started is not None:
            newest = min(self.started, newest or self.started)
        return _cursor(newest, self.since)

    def interrupted(self) -> None:
        self.save()

    def finish(self) -> None:
        self.state.finish_pull(self.buffer, self.gone, full=self.since is None, cursor=self.cursor())
        self.buffer, self.gone = [], []


class PullPhase:
    """The purchase half of a job's pull (:class:`segsync.sync.engine` builds the job on it):
    which pull to run, running it into the ledger (or a dry run's scratch copy of it), and the
    periodic full pull."""

    if TYPE_CHECKING:  # what the job provides
        platform: Platform
        store: StateStore
        state: AccountStore
        ledger_state: AccountStore
        report: SyncReport
        name: str
        full: bool
        full_every: dt.timedelta | None
        purchase_chunk: int
        _scratch: tempfile.TemporaryDirectory[str] | None
        _scratch_store: StateStore | None

        def _tick(self, phase: str, done: int, total: int | None = None, detail: str = "") -> None: ...

    def _pull_purchases(self, rejections: list[Rejection]) -> AccountLedger:
        full = self.full or self._reconcile_due()
        pull, records = self._purchase_pull(full)
        try:
            for rec in records:
                if isinstance(rec, Rejection):
                    rejections.append(rec)
                pull.add(rec)
                if pull.pulled and pull.pulled % 100 == 0:
                    self._tick("pull_purchases", pull.pulled)
        except (Exception, KeyboardInterrupt):  # Ctrl-C keeps the pages read, as a pause does
            pull.interrupted()
            raise
        pull.finish()
        if pull.since is None:
            self.ledger_state.set_cursor(self.store.wall_clock.now(), name=FULL_PULL)
        self.report.purchases_pulled = pull.pulled
        self._tick("pull_purchases", pull.pulled, pull.pulled)
        self.ledger_state.compact_ledger()
        return self.ledger_state.ledger()

    def _reconcile_due(self) -> bool:
        """Whether the periodic full purchase pull is due (``full_every``)."""
        if not self.platform.incremental_purchases:
            return False
        return full_pull_due(
            self.ledger_state, self.store.wall_clock.now(), self.full_every, "purchases", FULL_PULL, self.name
        )

    def _purchase_pull(self, full: bool) -> tuple[PurchasePull | ResumablePull, Iterator[PurchaseRecord]]:
        """The pull to run: resumed from a saved page token, or from the cursor (a full one
        without a cursor, or with ``--full``, which also drops an unfinished resumable pull)."""
        platform = self.platform
        incremental = platform.incremental_purchases
        if not (incremental and isinstance(platform, ResumablePurchases)):
            since = None if full or not incremental else self.ledger_state.cursor()
            plain = PurchasePull(self.ledger_state, since, incremental, self.purchase_chunk)
            return plain, platform.iter_purchases(since)
        tokens = platform.resume_tokens

        def token() -> str | None:
            return tokens.get("purchases")

        saved = self.ledger_state.pull_state()
        if saved is not None and full:
            self.ledger_state.discard_pull()
            saved = None
        if saved is not None:
            log.info("%s: resuming the purchase pull where the last job left it", self.name)
            pull = ResumablePull.resume(self.ledger_state, saved, self.purchase_chunk, token)
            return pull, platform.iter_purchases(saved.since, resume=saved.token)
        since = None if full else self.ledger_state.cursor()
        pull = ResumablePull(self.ledger_state, since, self.purchase_chunk, token)
        return pull, platform.iter_purchases(since)

    def _scratch_ledger(self) -> AccountStore:
        """A dry run pulls purchases into a copy of the account's ledger: it takes no lock, so
        it must never write the ledger (or its cursor) that a running sync owns."""
        self._scratch = tempfile.TemporaryDirectory(prefix="segsync-plan-")
        scratch = StateStore(Path(self._scratch.name) / "plan.db", wall_clock=self.store.wall_clock)
        scratch.copy_ledger(self.store, self.state.platform, self.state.account)
        self._scratch_store = scratch
        return scratch.account(self.state.platform, self.state.account)

    def _close_scratch(self) -> None:
        if self._scratch_store is not None:
            self._scratch_store.close()
            self._scratch_store = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def full_pull_due(
    state: AccountStore, now: dt.datetime, every: dt.timedelta | None, cursor: str, last_full: str, name: str
) -> bool:
    """Whether the periodic full pull of a stream (its cursor ``cursor``; ``last_full``
    remembers when its last full pull ended) is due under ``full_every``; says so when it is."""
    if every is None or state.cursor(cursor) is None:
        return False  # never, or the pull is full anyway
    last = state.cursor(last_full)
    if last is not None and now - last < every:
        return False
    when = "never" if last is None else f"{_span(now - last)} ago"
    what = cursor.removesuffix("s")
    log.info(
        "%s: the last full %s pull was %s (full_every %s): pulling every %s",
        name,
        what,
        when,
        _span(every),
        what,
    )
    return True


def _span(delta: dt.timedelta) -> str:
    """A duration for people: whole days past a day ("8 days"), else minutes or hours."""
    if delta >= dt.timedelta(days=1):
        days = round(delta.total_seconds() / 86_400)
        return f"{days} day{'s' if days != 1 else ''}"
    return human_duration(delta.total_seconds())


__all__ = ["CURSOR_OVERLAP", "FULL_PULL", "PullPhase", "PurchasePull", "ResumablePull", "full_pull_due"]
