"""Build a connected :class:`~segsync.sync.platform.Platform` from segsync.toml and the environment.

Settings come from ``[platforms.<name>]`` validated by the plugin's ``Settings`` model, with
``base_url`` overridden by ``SEGSYNC_<NAME>_BASE_URL`` when set (how ``segsync demo`` and the
sandboxes point a real SDK at loopback). The credential comes only from the environment
variable the plugin names (``cls.secret_env``) and travels as a ``SecretStr``. Time is
injectable: tests pass a fake clock to the runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr, ValidationError

from segsync.errors import ConfigError
from segsync.plugins.registry import Registry
from segsync.sync.platform import Platform, PlatformSettings
from segsync.sync.runner import CallRunner, Clock, RetryPolicy


class ConfigLike(Protocol):
    """What connecting needs from :class:`segsync.project.config.ProjectConfig`."""

    @property
    def path(self) -> Path: ...

    @property
    def retry(self) -> RetryPolicy: ...

    def platform_settings(self, name: str) -> dict[str, Any]: ...


def base_url_env(name: str) -> str:
    return f"SEGSYNC_{name.upper()}_BASE_URL"


def platform_settings(
    cls: type[Platform], config: ConfigLike, env: Mapping[str, str] | None = None
) -> PlatformSettings:
    """``[platforms.<name>]`` validated by the plugin's Settings (env may override base_url)."""
    env = os.environ if env is None else env
    table = dict(config.platform_settings(cls.name))
    override = env.get(base_url_env(cls.name), "").strip()
    if override:
        table["base_url"] = override
    try:
        return cls.Settings.model_validate(table)
    except ConfigError as err:  # a validator's own one-line error (base_url)
        from segsync.project.manifest import display_path

        where = base_url_env(cls.name) if override else f"{display_path(config.path)} [platforms.{cls.name}]"
        raise ConfigError(f"{where}: {err}") from None
    except ValidationError as err:
        from segsync.project.manifest import display_path, validation_error

        raise validation_error(
            f"{display_path(config.path)} [platforms.{cls.name}]", err, cls.Settings
        ) from None


def read_secret(cls: type[Platform], env: Mapping[str, str] | None = None) -> SecretStr:
    env = os.environ if env is None else env
    value = env.get(cls.secret_env, "").strip()
    if not value:
        raise ConfigError(
            f"set {cls.secret_env} to your {cls.display_name} credential "
            "(segsync reads secrets only from the environment, never from segsync.toml)"
        )
    return SecretStr(value)


def connect(
    config: ConfigLike,
    name: str,
    *,
    registry: Registry,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Platform:
    """A platform client for ``[platforms.<name>]``, with its own throttle and retry runner."""
    cls = registry.platform(name)
    settings = platform_settings(cls, config, env)
    secret = read_secret(cls, env)
    runner = CallRunner(cls.name, policy=config.retry, buckets=cls.rate_buckets(settings), clock=clock)
    return cls.create(settings, secret=secret, runner=runner)
