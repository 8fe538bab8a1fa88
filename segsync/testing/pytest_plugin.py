"""segsync's pytest plugin (entry point ``pytest11``), for plugin authors' test suites.

Fixtures:

* ``segsync_project``: call it with a platform name (and optionally a seed, settings and
  sandbox options) to get a :class:`segsync.testing.project.Project` in a temporary folder, its
  sandbox running; every project is stopped after the test;
* ``segsync_postgres``: a throwaway PostgreSQL server for the session
  (:class:`segsync.testing.postgres.TempPostgres`); skipped, with the reason, where none can
  start, unless ``SEGSYNC_TEST_REQUIRE_POSTGRES=1`` (CI), which makes that a failure;
* ``segsync_state_target``: run a test on both state store backends: a SQLite file, then a
  fresh PostgreSQL database.

Opt out with ``-p no:segsync``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from segsync.testing.postgres import TempPostgres, unavailable
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


@pytest.fixture(scope="session")
def segsync_postgres() -> Iterator[TempPostgres]:
    reason = unavailable()
    if reason is not None:
        if os.environ.get("SEGSYNC_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (SEGSYNC_TEST_REQUIRE_POSTGRES=1): {reason}")
        pytest.skip(f"no PostgreSQL server for the state store tests: {reason}")
    server = TempPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def segsync_state_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "state.db"
    server: TempPostgres = request.getfixturevalue("segsync_postgres")
    return server.database()
