"""Issue 8: the public API's old module paths still import, with a deprecation warning."""

from __future__ import annotations

import importlib

import pytest

import segsync


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("segsync.platform", "Platform"),
        ("segsync.platform", "PlatformSettings"),
        ("segsync.retry", "CallRunner"),
        ("segsync.retry", "RateWindow"),
        ("segsync.retry", "SystemClock"),
        ("segsync.manifest", "load_platform_manifest"),
    ],
)
def test_old_paths_warn_and_give_the_same_object(module, name):
    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} moved: import it from segsync"):
        value = getattr(old, name)
    assert value is getattr(segsync, name)


def test_unknown_names_are_attribute_errors():
    old = importlib.import_module("segsync.retry")
    with pytest.raises(AttributeError):
        old.nothing_here  # noqa: B018
