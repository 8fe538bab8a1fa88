"""Register objects handed to ``register_*`` hooks, and the registry they fill.

The core owns validation: a plugin calls ``register(...)``; a wrong type or a name another
plugin already took raises :class:`~segsync.errors.PluginError` naming both plugins.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

from segsync.core.catalog import (
    ArgKind,
    Catalog,
    FeatureDef,
    FeatureFn,
    FeatureType,
    OperatorDef,
    OperatorFn,
    VectorFeatureFn,
    VectorOperatorFn,
)
from segsync.core.models import FieldValue
from segsync.errors import PluginError, UnknownPlatform
from segsync.sync.platform import Platform, PlatformSettings


@dataclass
class Registry(Catalog):
    """Everything plugins contributed: platforms, and the catalog of features and operators.
    Built once per plugin manager."""

    platforms: dict[str, type[Platform]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def claim(self, kind: str, name: str, plugin: str) -> None:
        taken = self.owners.get((kind, name))
        if taken is not None:
            raise PluginError(
                f"plugin {plugin!r} registers {kind} {name!r}, which plugin {taken!r} already registered; "
                f"uninstall one of them or block it with SEGSYNC_DISABLE_PLUGINS={plugin}"
            )
        self.owners[(kind, name)] = plugin

    def platform(self, name: str) -> type[Platform]:
        try:
            return self.platforms[name]
        except KeyError:
            known = ", ".join(sorted(self.platforms)) or "none installed"
            close = difflib.get_close_matches(name.lower(), list(self.platforms), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"install it with: pip install segsync-{name}"
            raise UnknownPlatform(f"no platform plugin named {name!r} (installed: {known}); {hint}") from None


_PLATFORM_ATTRS = (
    "name",
    "display_name",
    "Settings",
    "secret_env",
    "memberships_inline",
    "incremental_purchases",
    "dynamic_lists",
)
_PLATFORM_METHODS = (
    "create",
    "rate_buckets",
    "sandbox",
    "account_id",
    "check",
    "iter_contacts",
    "iter_purchases",
    "inspect_fields",
    "create_fields",
    "update_field_options",
    "field_matches",
    "get_list",
    "find_list",
    "create_list",
    "list_members",
    "add_members",
    "remove_members",
    "write_fields",
    "call_cost",
    "close",
)


class PlatformRegister:
    """Handed to ``register_platforms``: ``register.add_platform(HubSpotPlatform)``.

    Calling the object (``register(cls)``) is the same, kept for plugins written before
    ``add_platform`` existed.
    """

    def __init__(self, registry: Registry, plugin: str) -> None:
        self._registry = registry
        self._plugin = plugin

    def __call__(self, cls: type[Platform]) -> None:
        self.add_platform(cls)

    def add_platform(self, cls: type[Platform]) -> None:
        """Add a class satisfying :class:`segsync.sync.platform.Platform`; its ``name`` must be unique."""
        missing = [a for a in (*_PLATFORM_ATTRS, *_PLATFORM_METHODS) if not hasattr(cls, a)]
        if missing:
            raise PluginError(
                f"plugin {self._plugin!r}: platform class {getattr(cls, '__name__', cls)!r} lacks "
                f"{', '.join(missing)}; see docs/plugins/writing-plugins.md"
            )
        if not (isinstance(cls.Settings, type) and issubclass(cls.Settings, PlatformSettings)):
            raise PluginError(
                f"plugin {self._plugin!r}: {cls.__name__}.Settings must subclass PlatformSettings"
            )
        self._registry.claim("platform", cls.name, self._plugin)
        self._registry.platforms[cls.name] = cls


class FeatureRegister:
    """Handed to ``register_features``: ``register.add_feature(name, compute, type=..., description=...)``
    (calling the object is the same)."""

    def __init__(self, registry: Registry, plugin: str) -> None:
        self._registry = registry
        self._plugin = plugin

    def __call__(
        self,
        name: str,
        compute: FeatureFn,
        *,
        type: FeatureType = "number",
        description: str = "",
        vector: VectorFeatureFn | None = None,
    ) -> None:
        self.add_feature(name, compute, type=type, description=description, vector=vector)

    def add_feature(
        self,
        name: str,
        compute: FeatureFn,
        *,
        type: FeatureType = "number",
        description: str = "",
        vector: VectorFeatureFn | None = None,
    ) -> None:
        """Add a per-contact field ``compute(contact, summary, as_of)``, pure; ``name`` unique.

        ``vector(frame)``, optional, computes it for every contact at once (see
        :mod:`segsync.core.columns`); it must agree with ``compute``."""
        if not name.isidentifier() or not callable(compute):
            raise PluginError(
                f"plugin {self._plugin!r}: feature {name!r} needs an identifier name and a function"
            )
        self._registry.claim("feature", name, self._plugin)
        if vector is not None and not callable(vector):
            raise PluginError(f"plugin {self._plugin!r}: feature {name!r}: vector must be a function")
        self._registry.features[name] = FeatureDef(name, compute, type, description, self._plugin, vector)


class OperatorRegister:
    """Handed to ``register_rule_operators``: ``register.add_operator(name, test, arg=..., ...)``
    (calling the object is the same)."""

    def __init__(self, registry: Registry, plugin: str) -> None:
        self._registry = registry
        self._plugin = plugin

    def __call__(
        self,
        name: str,
        test: OperatorFn,
        *,
        arg: ArgKind = "scalar",
        description: str = "",
        types: tuple[FeatureType, ...] = (),
        vector: VectorOperatorFn | None = None,
    ) -> None:
        self.add_operator(name, test, arg=arg, description=description, types=types, vector=vector)

    def add_operator(
        self,
        name: str,
        test: OperatorFn,
        *,
        arg: ArgKind = "scalar",
        description: str = "",
        types: tuple[FeatureType, ...] = (),
        vector: VectorOperatorFn | None = None,
    ) -> None:
        """Add a rule operator ``test(value, arg, as_of) -> bool``; ``arg`` says what a rule gives.

        ``vector(column, arg, as_of)``, optional, tests a whole column at once (see
        :mod:`segsync.core.columns`); it must agree with ``test``."""
        if not name.isidentifier() or not callable(test):
            raise PluginError(
                f"plugin {self._plugin!r}: operator {name!r} needs an identifier name and a function"
            )
        if arg not in ("none", "scalar", "list", "pair", "days"):
            raise PluginError(f"plugin {self._plugin!r}: operator {name!r} has unknown arg kind {arg!r}")
        bad = [t for t in types if t not in ("number", "string", "date", "boolean")]
        if bad:
            raise PluginError(f"plugin {self._plugin!r}: operator {name!r} has unknown field type(s) {bad}")
        self._registry.claim("operator", name, self._plugin)
        if vector is not None and not callable(vector):
            raise PluginError(f"plugin {self._plugin!r}: operator {name!r}: vector must be a function")
        self._registry.operators[name] = OperatorDef(
            name, test, arg, description, self._plugin, tuple(types), vector
        )


def iter_platforms(registry: Registry) -> Iterator[type[Platform]]:
    yield from (registry.platforms[k] for k in sorted(registry.platforms))


__all__ = [
    "FeatureDef",
    "FeatureRegister",
    "FieldValue",
    "OperatorDef",
    "OperatorRegister",
    "PlatformRegister",
    "Registry",
]
