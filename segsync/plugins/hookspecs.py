"""The hooks segsync calls, grouped by lifecycle. Project name for pluggy: ``"segsync"``.

Contributing hooks are ``register_*`` and receive a register object: call its methods, the
core validates and rejects duplicates naming both plugins. Notification hooks return nothing.
Hooks are always called with keyword arguments, so an implementation may accept only the
arguments it needs (pluggy's opt-in arguments) and new arguments never break old plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from segsync.core.report import JobInfo, SegmentChange, SyncReport
    from segsync.plugins.registry import FeatureRegister, OperatorRegister, PlatformRegister

hookspec = pluggy.HookspecMarker("segsync")
hookimpl = pluggy.HookimplMarker("segsync")

# -- contributing --------------------------------------------------------------------------


@hookspec
def register_platforms(register: PlatformRegister) -> None:
    """Register CRM platform classes: ``register(HubSpotPlatform)``.

    Called once when the plugin manager is built. The class must satisfy
    :class:`segsync.sync.platform.Platform`; its ``name`` must be unique across plugins.
    """


@hookspec
def register_features(register: FeatureRegister) -> None:
    """Register per-contact computed fields usable in segment rules.

    ``register(name, compute, type="number", description="...")`` where
    ``compute(contact, summary, as_of)`` gets the :class:`~segsync.core.models.Contact`, its
    :class:`~segsync.core.models.PurchaseSummary` (None if it never bought) and the run's reference
    date, and returns a value or None. Must be pure: no IO, no clock.
    """


@hookspec
def register_rule_operators(register: OperatorRegister) -> None:
    """Register condition operators for segment rules.

    ``register(name, test, arg="scalar", description="...")`` where ``test(value, arg, as_of)``
    returns whether a field value satisfies the condition (``as_of`` is the run's reference
    date, for relative-date operators). ``arg`` says what the rule must
    give: ``"none"``, ``"scalar"``, ``"list"``, ``"pair"`` or ``"days"``.
    """


# -- notifications -------------------------------------------------------------------------


@hookspec
def sync_started(job: JobInfo) -> None:
    """A sync job (``plan`` dry runs included, with ``job.dry_run``) is starting on a platform."""


@hookspec
def segment_changed(change: SegmentChange) -> None:
    """A contact moved between segments of an exclusive set in this sync.

    Called once per changed contact after its new value was written (never on dry runs).
    ``change.old`` is None for a contact entering the set.
    """


@hookspec
def sync_finished(report: SyncReport) -> None:
    """A sync job ended (success, failure or pause); ``report`` holds counts, calls and errors."""
