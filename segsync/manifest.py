"""Deprecated alias (segsync 0.1): import these names from :mod:`segsync`."""

from __future__ import annotations

from segsync._deprecated import alias

__getattr__ = alias(
    "segsync.manifest",
    dict.fromkeys(("PlatformManifest", "load_platform_manifest"), "segsync.project.manifest"),
)
