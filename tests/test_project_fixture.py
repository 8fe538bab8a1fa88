"""The ``segsync_project`` fixture plugin authors use (segsync.testing.pytest_plugin)."""

from __future__ import annotations

import datetime as dt

import pytest

from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.sandbox import demo_dataset

AS_OF = dt.date(2026, 1, 15)
PLATFORMS = [p for p in ("hubspot", "brevo") if p in build_registry(make_plugin_manager()).platforms]

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", PLATFORMS)
def test_a_project_syncs_then_resyncs_writing_nothing(segsync_project, name):
    project = segsync_project(name, seed=demo_dataset(AS_OF, contacts=40, seed=5))
    project.run("check").assert_success()
    first = project.run("sync", "-q", "--as-of", AS_OF.isoformat())
    first.assert_success()
    assert "succeeded" in first.out
    again = project.run("sync", "-q", "--as-of", AS_OF.isoformat())
    again.assert_success()
    assert "wrote 0 contact(s)" in again.out
    assert project.sandbox.snapshot()["fields"]
    jobs = project.run("jobs")
    jobs.assert_success()
    assert jobs.out.count("succeeded") == 2


def test_outcomes_say_what_failed(segsync_project):
    project = segsync_project(PLATFORMS[0], settings={"timeout": 5})
    assert "timeout = 5" in (project.folder / "segsync.toml").read_text(encoding="utf-8")
    bad = project.run("sync", env={project.secret_env: "wrong-secret"})
    bad.assert_failed(1)
    assert "rejected" in bad.err
    with pytest.raises(AssertionError, match="exited 1"):
        bad.assert_success()
