"""Records that describe a sync job, passed to notification hooks and kept in the state store."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["running", "succeeded", "failed", "paused", "interrupted"]


class JobInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: int
    platform: str
    as_of: dt.date
    dry_run: bool = False
    full: bool = False
    resumed_from: int | None = None


class SegmentChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    platform: str
    contact_id: str
    segment_set: str
    old: str | None
    new: str | None


class SyncReport(BaseModel):
    """What one job did. Counts are records unless they say calls."""

    model_config = ConfigDict(extra="forbid")

    job: JobInfo
    status: JobStatus = "running"
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    phase: str = "pull"
    contacts_pulled: int = 0
    #: contacts taken from the state store's cache instead of the CRM (an incremental pull)
    contacts_cached: int = 0
    purchases_pulled: int = 0
    rejected: int = 0
    fields_created: int = 0
    lists_created: int = 0
    contacts_written: int = 0
    members_added: int = 0
    members_removed: int = 0
    failed_records: int = 0
    calls: int = 0
    write_calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    error: str | None = None
    resume_after_seconds: float | None = None
    segment_sizes: dict[str, int] = Field(default_factory=dict)
    #: fields segsync would not write because they exist in the CRM with another type
    conflicts: list[str] = Field(default_factory=list)

    def contacts_text(self) -> str:
        """ "1500 contacts", or "3 contacts (1,497 more from the cache)" after an incremental pull."""
        cached = f" ({self.contacts_cached:,} more from the cache)" if self.contacts_cached else ""
        return f"{self.contacts_pulled} contacts{cached}"
