"""Run ``shared/tools/spec-check`` over a sandbox traffic log from a test.

The vendors' OpenAPI specs and the checker live in a ``shared`` folder beside the repository
(CI has it). ``SEGSYNC_SHARED_DIR`` points elsewhere; where none is found, tests skip with a
reason instead of passing vacuously.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    env = os.environ.get("SEGSYNC_SHARED_DIR")
    candidates = [Path(env)] if env else [_REPO.parent / "shared", Path.cwd().parent / "shared"]
    for c in candidates:
        if (c / "tools" / "spec-check").is_file() and (c / "specs").is_dir():
            return c
    return None


def run_spec_check(platform: str, log: Path) -> tuple[int, str]:
    """(exit status, output) of ``spec-check validate --platform P LOG``."""
    shared = shared_dir()
    if shared is None:
        raise FileNotFoundError("shared/tools/spec-check not found; set SEGSYNC_SHARED_DIR")
    tool = shared / "tools" / "spec-check"
    proc = subprocess.run(  # noqa: S603 - fixed tool path and arguments
        ["/bin/bash", str(tool), "validate", "--platform", platform, "--summary", str(log)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def assert_traffic_conforms(platform: str, log: Path) -> str:
    """Fail the calling test unless every exchange in ``log`` conforms; skip if no shared/."""
    import pytest

    if shared_dir() is None:
        pytest.skip("../shared (vendor OpenAPI specs and spec-check) is not beside this checkout; CI has it")
    if not log.is_file() or not log.read_text(encoding="utf-8").strip():
        pytest.fail(f"no traffic was recorded in {log}")
    status, out = run_spec_check(platform, log)
    assert status == 0, f"spec-check found non-conforming exchanges:\n{out}"
    return out
