"""`segsync demo` on each bundled sandbox: the loop a new user sees first."""

from __future__ import annotations

import pytest

from segsync.cli import main
from segsync.plugins.manager import build_registry, make_plugin_manager

PLATFORMS = sorted(build_registry(make_plugin_manager()).platforms)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_demo_runs_the_whole_loop(capsys, tmp_path, platform):
    status = main(["demo", "--platform", platform, "--contacts", "150", "--dir", str(tmp_path / "demo")])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Traceback" not in out + err
    assert "1. first sync" in out
    assert "RFM grid" in out
    assert "Champions" in out
    assert "write calls: 0 (a sync with no change writes nothing)" in out
    assert "segsync_rfm_segment" in out  # the buyer's segment changed after the new purchase
    assert "joined list segsync · " in out
    assert "rejected records" in out
    assert (tmp_path / "demo" / "segsync.toml").is_file()
    assert main(["jobs", "-c", str(tmp_path / "demo" / "segsync.toml")]) == 0
    assert "succeeded" in capsys.readouterr().out


def test_demo_refuses_a_tiny_store(capsys):
    assert main(["demo", "--contacts", "3"]) == 2
    assert "at least 50" in capsys.readouterr().err
