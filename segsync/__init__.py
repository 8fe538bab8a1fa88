"""segsync: customer segments and RFM scores computed from a CRM and written back into it.

The public API for plugin authors is what this module exports, plus :mod:`segsync.sandbox`
(emulators) and :mod:`segsync.testing` (in tests). Plugins import nothing else from segsync:
the import contract in ``.importlinter`` enforces it. Every name resolves on first use (PEP 562),
so importing the pure core (``segsync.core.rules``) does not load the retry layer or pluggy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "Contact",
            "ContactGone",
            "ContactUpdate",
            "FieldOption",
            "FieldSpec",
            "FieldType",
            "FieldValue",
            "ListSpec",
            "PullProgress",
            "Purchase",
            "PurchaseRetracted",
            "PurchaseSummary",
            "RecordFailure",
            "Rejection",
            "RemoteField",
            "RemoteList",
            "WriteResult",
        ],
        "segsync.core.models",
    ),
    **dict.fromkeys(
        [
            "AuthError",
            "ConfigError",
            "ConflictError",
            "FatalPlatformError",
            "ManifestError",
            "PermanentError",
            "PermissionDenied",
            "PlatformError",
            "PluginError",
            "RateLimited",
            "RetriableError",
            "SegsyncError",
            "SyncPaused",
            "TransientError",
            "WebhookRefused",
        ],
        "segsync.errors",
    ),
    "hookimpl": "segsync.plugins.hookspecs",
    "PlatformRegister": "segsync.plugins.registry",
    "FeatureRegister": "segsync.plugins.registry",
    "OperatorRegister": "segsync.plugins.registry",
    **dict.fromkeys(("CostKind", "RateWindow"), "segsync.core.cost"),
    # The columnar forms of features and operators (see docs/plugins/plugin-hooks.md).
    **dict.fromkeys(("Column", "Frame"), "segsync.core.columns"),
    **dict.fromkeys(
        (
            "IncrementalContacts",
            "ListsById",
            "MembershipChanges",
            "Platform",
            "PlatformLimits",
            "PlatformSettings",
            "ResumablePurchases",
        ),
        "segsync.sync.platform",
    ),
    **dict.fromkeys(
        ("WebhookEvent", "WebhookReceiver", "WebhookRequest", "same_secret"), "segsync.sync.webhooks"
    ),
    **dict.fromkeys(("CallRunner", "Clock", "RetryPolicy", "SystemClock"), "segsync.sync.runner"),
    **dict.fromkeys(("error_class", "header", "header_count", "header_number"), "segsync.sync.http"),
    **dict.fromkeys(
        ("CursorPaging", "OffsetCursor", "OffsetPaging", "PageGuard", "after_token"), "segsync.sync.paging"
    ),
    **dict.fromkeys(("PlatformManifest", "load_platform_manifest"), "segsync.project.manifest"),
    # How mappings read CRM values: one set of bounds and one wording for every platform.
    **dict.fromkeys(
        ("MAX_AMOUNT", "bad_text", "is_blank", "parse_number", "quote", "read_amount"),
        "segsync.core.record_checks",
    ),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segsync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from segsync.core.columns import Column, Frame
    from segsync.core.cost import CostKind, RateWindow
    from segsync.core.models import (
        Contact,
        ContactGone,
        ContactUpdate,
        FieldOption,
        FieldSpec,
        FieldType,
        FieldValue,
        ListSpec,
        PullProgress,
        Purchase,
        PurchaseRetracted,
        PurchaseSummary,
        RecordFailure,
        Rejection,
        RemoteField,
        RemoteList,
        WriteResult,
    )
    from segsync.core.record_checks import (
        MAX_AMOUNT,
        bad_text,
        is_blank,
        parse_number,
        quote,
        read_amount,
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
        WebhookRefused,
    )
    from segsync.plugins.hookspecs import hookimpl
    from segsync.plugins.registry import FeatureRegister, OperatorRegister, PlatformRegister
    from segsync.project.manifest import PlatformManifest, load_platform_manifest
    from segsync.sync.http import error_class, header, header_count, header_number
    from segsync.sync.paging import CursorPaging, OffsetCursor, OffsetPaging, PageGuard, after_token
    from segsync.sync.platform import (
        IncrementalContacts,
        ListsById,
        MembershipChanges,
        Platform,
        PlatformLimits,
        PlatformSettings,
        ResumablePurchases,
    )
    from segsync.sync.runner import CallRunner, Clock, RetryPolicy, SystemClock
    from segsync.sync.webhooks import WebhookEvent, WebhookReceiver, WebhookRequest, same_secret

__all__ = [
    "Column",
    "Frame",
    "CursorPaging",
    "OffsetCursor",
    "OffsetPaging",
    "PageGuard",
    "after_token",
    "error_class",
    "MAX_AMOUNT",
    "bad_text",
    "is_blank",
    "parse_number",
    "quote",
    "read_amount",
    "AuthError",
    "CallRunner",
    "Clock",
    "ConfigError",
    "ConflictError",
    "Contact",
    "ContactGone",
    "ContactUpdate",
    "CostKind",
    "FatalPlatformError",
    "FeatureRegister",
    "IncrementalContacts",
    "ListsById",
    "FieldOption",
    "FieldSpec",
    "FieldType",
    "FieldValue",
    "ListSpec",
    "ManifestError",
    "MembershipChanges",
    "OperatorRegister",
    "PermanentError",
    "PermissionDenied",
    "Platform",
    "PlatformError",
    "PlatformLimits",
    "PlatformManifest",
    "PlatformRegister",
    "PlatformSettings",
    "PluginError",
    "PullProgress",
    "Purchase",
    "PurchaseRetracted",
    "PurchaseSummary",
    "RateLimited",
    "RateWindow",
    "RecordFailure",
    "Rejection",
    "RemoteField",
    "RemoteList",
    "ResumablePurchases",
    "RetriableError",
    "RetryPolicy",
    "SegsyncError",
    "SyncPaused",
    "SystemClock",
    "TransientError",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookRefused",
    "WebhookRequest",
    "WriteResult",
    "__version__",
    "header",
    "header_count",
    "header_number",
    "hookimpl",
    "load_platform_manifest",
    "same_secret",
]
