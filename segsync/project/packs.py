"""The segment packs a project uses: those ``segsync.toml`` names, then its custom sets.

Apart from :mod:`segsync.project.manifest` (reading one manifest file) so that the manifest
reader and the configuration do not import each other.
"""

from __future__ import annotations

from typing import Any

from segsync.core.rules import RuleContext, did_you_mean
from segsync.core.segments import SegmentPack, check_unique
from segsync.errors import ConfigError, ManifestError
from segsync.plugins.registry import Registry
from segsync.project.config import ProjectConfig
from segsync.project.manifest import compile_sets, display_path, load_pack


def load_packs(config: ProjectConfig, registry: Registry) -> list[SegmentPack]:
    """Every pack ``config`` names, then its ``[[segments.custom]]`` sets as a pack "custom".

    Checks across packs: set keys, managed fields and list names are unique; every parameter
    in ``[segments.params]`` is declared by a pack (or used by a custom set).
    """
    seg = config.segments
    source = display_path(config.path)
    packs = []
    for i, name in enumerate(seg.packs):
        try:
            pack = load_pack(
                name, root=config.root, params=seg.params, registry=registry, properties=config.properties
            )
        except ManifestError:
            raise
        except ConfigError as err:  # the pack could not be found: point at the line that names it
            raise ManifestError(f"{source}: segments.packs[{i}]", str(err)) from None
        packs.append(pack)
    used: set[str] = set()
    if seg.custom:
        params: dict[str, Any] = {}
        for pack in packs:
            params.update(pack.params)
        params.update(seg.params)
        origin = dict.fromkeys(seg.params, "segsync.toml [segments.params]")
        ctx = RuleContext(registry, config.properties, source, params, origin)
        custom_sets = compile_sets(seg.custom, ctx, ("segments", "custom"))
        used = ctx.used_params
        packs.append(SegmentPack("custom", source, custom_sets, "sets declared in segsync.toml", params))
    declared = {k for p in packs[: len(seg.packs)] for k in p.params}
    for key in seg.params:
        if key not in declared and key not in used:
            known = ", ".join(sorted(declared)) or "none"
            raise ManifestError(
                f"{source}: segments.params.{key}",
                f"no loaded pack declares this parameter (declared: {known})",
                did_you_mean(key, declared),
            )
    check_unique(packs)
    return packs


__all__ = ["load_packs"]
