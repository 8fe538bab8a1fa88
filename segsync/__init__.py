"""segsync: customer segments and RFM scores computed from a CRM and written back into it.

The public API for plugin authors is what this module exports, plus :mod:`segsync.sync.platform`,
:mod:`segsync.sync.runner`, :mod:`segsync.sandbox`, :mod:`segsync.project.manifest` (platform manifests)
and :mod:`segsync.testing` (in tests). Plugins import nothing else from segsync.
"""

from __future__ import annotations

from segsync.core.models import (
    Contact,
    ContactUpdate,
    FieldOption,
    FieldSpec,
    FieldType,
    FieldValue,
    ListSpec,
    Purchase,
    PurchaseRetracted,
    PurchaseSummary,
    RecordFailure,
    Rejection,
    RemoteField,
    RemoteList,
    WriteResult,
)
from segsync.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    FatalPlatformError,
    ManifestError,
    PermanentError,
    PermissionDenied,
    PlatformError,
    PluginError,
    RateLimited,
    RetriableError,
    SegsyncError,
    SyncPaused,
    TransientError,
)
from segsync.plugins.hookspecs import hookimpl
from segsync.sync.platform import CostKind, Platform, PlatformLimits, PlatformSettings
from segsync.sync.runner import CallRunner, RateWindow, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "CallRunner",
    "ConfigError",
    "ConflictError",
    "Contact",
    "ContactUpdate",
    "CostKind",
    "FatalPlatformError",
    "FieldOption",
    "FieldSpec",
    "FieldType",
    "FieldValue",
    "ListSpec",
    "ManifestError",
    "PermanentError",
    "PermissionDenied",
    "Platform",
    "PlatformError",
    "PlatformLimits",
    "PlatformSettings",
    "PluginError",
    "Purchase",
    "PurchaseRetracted",
    "PurchaseSummary",
    "RateLimited",
    "RateWindow",
    "RecordFailure",
    "Rejection",
    "RemoteField",
    "RemoteList",
    "RetriableError",
    "RetryPolicy",
    "SegsyncError",
    "SyncPaused",
    "TransientError",
    "WriteResult",
    "__version__",
    "hookimpl",
]
