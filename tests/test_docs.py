"""The docs are part of the product: these tests keep them true to the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from segsync.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "segsync_spec"))


def test_hooks_found():
    assert {"register_platforms", "sync_finished"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_plugin_hooks_are_documented(name):
    text = (ROOT / "docs" / "plugins" / "plugin-hooks.md").read_text(encoding="utf-8")
    args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"## {name}({args})" in text, f"docs/plugins/plugin-hooks.md needs a '## {name}({args})' section"


@pytest.mark.parametrize("name", HOOKS)
def test_plugin_hooks_have_docstrings(name):
    assert (getattr(hookspecs, name).__doc__ or "").strip()


def test_docs_links_resolve():
    broken = []
    for md in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", md.read_text(encoding="utf-8")):
            if not (md.parent / target).resolve().is_file():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, broken
