"""The notification hooks a sync job calls, as the engine sees them."""

from __future__ import annotations

from typing import Protocol

from segsync.core.report import JobInfo, SegmentChange, SyncReport


class Hooks(Protocol):
    """The notification hooks a job calls (:class:`segsync.plugins.manager.Hooks` is one): the
    engine sees only this, never the plugin manager."""

    def sync_started(self, job: JobInfo) -> None: ...

    def segment_changed(self, change: SegmentChange) -> None: ...

    def sync_finished(self, report: SyncReport) -> None: ...


__all__ = ["Hooks"]
