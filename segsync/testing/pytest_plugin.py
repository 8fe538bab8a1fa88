"""segsync's pytest plugin (entry point ``pytest11``), for plugin authors' test suites.

It provides one fixture, ``segsync_project``: call it with a platform name (and optionally a
seed, settings and sandbox options) to get a :class:`segsync.testing.project.Project` in a
temporary folder, its sandbox running; every project is stopped after the test. Opt out with
``-p no:segsync``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from segsync.testing.project import Project


@pytest.fixture
def segsync_project(tmp_path: Path) -> Iterator[Callable[..., Project]]:
    """A factory of projects: ``segsync_project("hubspot", seed=..., settings={...})``."""
    made: list[Project] = []

    def make(platform: str, **kw: Any) -> Project:
        project = Project(tmp_path / f"project-{len(made) + 1}", platform, **kw)
        made.append(project)
        return project

    try:
        yield make
    finally:
        for project in made:
            project.close()
