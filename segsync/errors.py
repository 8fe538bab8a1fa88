"""Every error segsync raises, in one tree.

Errors are classified here, once, by the decision they call for (retry, stop, record and go on),
not by where they came from::

    SegsyncError                      base; the CLI prints str(err) without a traceback
    ├── ConfigError                   segsync.toml, a manifest, an env var: fix the input
    │   └── ManifestError             a manifest file, with the exact location
    ├── PluginError                   a plugin failed to load or registered something twice
    │   └── UnknownPlatform           no installed plugin has that name (also a ConfigError: exit 2)
    ├── StateError                    the state store is unusable (locked by a live job, corrupt)
    │   └── JobLocked                 another job holds this account's lock
    ├── SyncPaused                    a rate budget is spent: the job checkpointed, run again later
    ├── SyncStopped                   asked to stop (SIGTERM): the job checkpointed, run again later
    ├── WebhookRefused                a webhook delivery failed its signature, token or time check
    └── PlatformError                 a CRM call failed (message never carries CRM bodies)
        ├── FatalPlatformError        stop the job: retrying cannot help
        │   ├── AuthError             401: token wrong, expired or missing
        │   ├── PermissionDenied      403: missing scopes (named)
        │   ├── PermanentError        400/404/409/422 on a whole call: a bug or bad data
        │   └── ConflictError         a CRM object exists with another shape (property type, list type)
        └── RetriableError            retry the same call after a wait
            ├── RateLimited           429, with the wait the CRM asked for if it said one
            └── TransientError        5xx, timeouts, dropped connections

Messages say what failed, where, and what to do. They never contain a token, an API key, a
request/response body or a header from an SDK exception: those carry secrets and CRM PII.
"""

from __future__ import annotations

from collections.abc import Sequence


class SegsyncError(Exception):
    """Base of every error segsync raises on purpose."""

    exit_code = 1


class ConfigError(SegsyncError):
    """Bad configuration: segsync.toml, an environment variable, a command-line value."""

    exit_code = 2


class ManifestError(ConfigError):
    """A manifest (segment pack, platform manifest) failed validation.

    ``where`` is ``"path/to/file.toml: segments[2].rule.all[0].days"``-style.
    """

    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = where
        self.problem = problem
        self.hint = hint
        text = f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class PluginError(SegsyncError):
    """A plugin failed to load, or contributed something invalid or duplicate."""


class UnknownPlatform(PluginError, ConfigError):
    """A platform name (command line or segsync.toml) that no installed plugin provides: bad input."""

    exit_code = 2


class StateError(SegsyncError):
    """The state store cannot be used."""


class JobLocked(StateError):
    """Another live sync job holds the lock for this account."""


class SyncPaused(SegsyncError):
    """A rate budget (e.g. Brevo's hourly one) is spent; the job checkpointed and can resume.

    ``resume_after`` is seconds from now when the budget is expected back.
    """

    exit_code = 75  # EX_TEMPFAIL: cron and CI tell "try again later" from a failure

    def __init__(self, message: str, resume_after: float) -> None:
        super().__init__(message)
        self.resume_after = resume_after


class SyncStopped(SegsyncError):
    """The job was asked to stop (``segsync watch``/``serve`` got SIGTERM) and stopped at a
    checkpoint; the next sync resumes it."""

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a process stopped by it


class WebhookRefused(SegsyncError):
    """A webhook delivery that must not be trusted: bad or missing signature or token, a stale
    or replayed timestamp. ``reason`` is a short label for logs and metrics (never the body)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class PlatformError(SegsyncError):
    """A call to a CRM failed.

    ``platform`` and ``operation`` say where (``hubspot``, ``lists.create``); ``status`` is the
    HTTP status if there was one; ``category`` and ``correlation_id`` are the vendor's own
    non-PII identifiers, kept so support tickets can be filed.
    """

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        operation: str = "",
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.platform = platform
        self.operation = operation
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        prefix = ": ".join(p for p in (platform, operation) if p)
        detail = message
        if status is not None:
            detail = f"{status} {detail}"
        if correlation_id:
            detail += f" [correlation id {correlation_id}]"
        super().__init__(f"{prefix}: {detail}" if prefix else detail)


class FatalPlatformError(PlatformError):
    """Stop the job: retrying the same call cannot succeed."""


class AuthError(FatalPlatformError):
    """The credential was rejected or is missing."""


class PermissionDenied(FatalPlatformError):
    """The credential lacks scopes or permissions; ``required_scopes`` names them when known."""

    def __init__(self, message: str, *, required_scopes: Sequence[str] = (), **kw: object) -> None:
        self.required_scopes = tuple(required_scopes)
        if self.required_scopes:
            message = f"{message}; missing scopes: {', '.join(self.required_scopes)}"
        super().__init__(message, **kw)  # type: ignore[arg-type]


class PermanentError(FatalPlatformError):
    """The CRM refused the whole call as invalid (400/404/409/422)."""


class ConflictError(FatalPlatformError):
    """Something in the CRM already exists with a shape segsync must not overwrite."""


class RetriableError(PlatformError):
    """The same call may succeed later."""


class RateLimited(RetriableError):
    """429. ``retry_after`` is the wait in seconds the CRM asked for, if it said one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class TransientError(RetriableError):
    """5xx, a timeout or a dropped connection."""


def retriable(exc: BaseException) -> bool:
    """The one place that decides whether a failed call is retried."""
    return isinstance(exc, RetriableError)
