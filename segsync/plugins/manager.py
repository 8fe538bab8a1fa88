"""The plugin manager factory, the typed hook facade, and plugin listing.

``make_plugin_manager()`` builds a fresh manager each time (no global created at import):
hookspecs, the built-in plugins in ``segsync.default_plugins``, then every ``segsync``
entry point, honouring three environment variables:

``SEGSYNC_LOAD_PLUGINS``     comma-separated allow-list of entry-point or distribution names;
                             set to an empty string to load no external plugin
``SEGSYNC_DISABLE_PLUGINS``  comma-separated names to block
``SEGSYNC_TRACE_PLUGINS=1``  print every notification hook call (``sync_started``,
                             ``segment_changed``, ``sync_finished``) with its results to stderr
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from segsync.core.report import JobInfo, SegmentChange, SyncReport
from segsync.errors import PluginError, SegsyncError
from segsync.plugins import hookspecs
from segsync.plugins.registry import FeatureRegister, OperatorRegister, PlatformRegister, Registry

PROJECT = "segsync"
DEFAULT_PLUGINS = (
    "segsync.default_plugins.features",
    "segsync.default_plugins.operators",
)


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def make_plugin_manager(
    *, load_entrypoints: bool = True, environ: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    env = os.environ if environ is None else environ
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for modname in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    if load_entrypoints:
        allow = _names(env.get("SEGSYNC_LOAD_PLUGINS"))
        block = _names(env.get("SEGSYNC_DISABLE_PLUGINS")) or set()
        for ep in importlib.metadata.entry_points(group=PROJECT):
            dist = ep.dist.name if ep.dist else ep.name
            names = {ep.name, dist}
            if (allow is not None and not names & allow) or names & block:
                pm.set_blocked(ep.name)
                continue
            try:
                ep.load()  # import here first so a broken plugin is named in the error
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} ({dist}) failed to import: {type(exc).__name__}; "
                    f"reinstall it or disable it with SEGSYNC_DISABLE_PLUGINS={ep.name}"
                ) from exc
        pm.load_setuptools_entrypoints(PROJECT)
    pm.check_pending()
    if env.get("SEGSYNC_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _trace_before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    print(
        f"segsync hook {hook_name} -> {[i.plugin_name for i in impls]} kwargs={sorted(kwargs)}",
        file=sys.stderr,
    )


def _trace_after(
    outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
) -> None:
    print(f"segsync hook {hook_name} returned {outcome.get_result()!r}", file=sys.stderr)


def _call_each(pm: pluggy.PluginManager, hook_name: str, make_arg: Any) -> None:
    """Call a register_* hook once per contributing plugin, through pluggy's own call loop
    (so tracing, monitoring and hookwrappers see it), each with a register object that knows
    which plugin is registering: a duplicate name is reported naming both plugins."""
    caller = getattr(pm.hook, hook_name)
    impls = [i for i in caller.get_hookimpls() if not (i.hookwrapper or i.wrapper)]
    # Registration order: built-ins claim their names first, so a clash names the plugin that
    # came later as the intruder (and the hint to block it points at a plugin, not at segsync).
    for impl in impls:
        others = [i.plugin for i in impls if i.plugin is not impl.plugin]
        one = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            one(**{name: make_arg(impl.plugin_name) for name in caller.spec.argnames})
        except SegsyncError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
            ) from exc


def build_registry(pm: pluggy.PluginManager, *, platforms: bool = True) -> Registry:
    """Every plugin's platforms, features and operators; ``platforms=False`` leaves the platforms
    out, for commands that talk to no CRM (``segsync score``), which then never import an SDK."""
    registry = Registry()
    if platforms:
        _call_each(pm, "register_platforms", lambda p: PlatformRegister(registry, p))
    _call_each(pm, "register_features", lambda p: FeatureRegister(registry, p))
    _call_each(pm, "register_rule_operators", lambda p: OperatorRegister(registry, p))
    return registry


class Hooks:
    """Typed facade over the notification hooks, so mypy checks every call site."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def sync_started(self, job: JobInfo) -> None:
        self.pm.hook.sync_started(job=job)

    def segment_changed(self, change: SegmentChange) -> None:
        self.pm.hook.segment_changed(change=change)

    def sync_finished(self, report: SyncReport) -> None:
        self.pm.hook.sync_finished(report=report)


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]


def list_plugins(pm: pluggy.PluginManager, *, include_builtin: bool = False) -> list[PluginInfo]:
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or (not include_builtin and name in DEFAULT_PLUGINS):
            continue
        dist = dists.get(id(plugin))
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        out.append(
            PluginInfo(
                name=name,
                distribution=dist.project_name if dist else None,
                version=dist.version if dist else None,
                hooks=hooks,
            )
        )
    return sorted(out, key=lambda p: p.name)
