"""Module paths of segsync's public API before the wings (segsync 0.1), kept as aliases.

``segsync.platform``, ``segsync.retry`` and ``segsync.manifest`` re-export what plugins imported
from them and warn once: import those names from ``segsync`` instead. They go in segsync 0.3.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def alias(old: str, names: dict[str, str]) -> Any:
    """A module ``__getattr__`` for ``old`` that resolves ``names`` (name -> new module)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old}.{name} moved: import it from segsync ({old} goes in segsync 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)

    return __getattr__
