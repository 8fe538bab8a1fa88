"""Run ``shared/tools/spec-check`` over a sandbox traffic log from a test.

The vendors' OpenAPI specs and the checker live in a ``shared`` folder beside the repository
(CI has it). ``SEGSYNC_SHARED_DIR`` points elsewhere; where none is found, tests skip with a
reason instead of passing vacuously.

Successful exchanges go through ``spec-check`` unchanged. Error answers (status >= 400) need
one allowance: HubSpot's specs declare error bodies as ``*/*`` (``components/responses/Error``)
and the openapi-core behind spec-check hands ``*/*`` bodies to the schema as raw bytes, so every
error body "does not conform" whatever it holds. Error exchanges therefore go through the same
checker with a JSON reader registered for ``*/*`` (both CRMs send errors as JSON), so their
bodies are still held to the spec's error schema.
"""

from __future__ import annotations

import json
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


_JSON_ERRORS = """
import functools, json, sys
import openapi_core
sys.path.insert(0, sys.argv[1])
openapi_core.Config = functools.partial(
    openapi_core.Config, extra_media_type_deserializers={"*/*": lambda value, **_: json.loads(value)}
)
import spec_check
sys.exit(spec_check.main(["validate", "--platform", sys.argv[2], "--max-errors", "1000", sys.argv[3]]))
"""


def _shared() -> Path:
    shared = shared_dir()
    if shared is None:
        raise FileNotFoundError("shared/tools/spec-check not found; set SEGSYNC_SHARED_DIR")
    return shared


def _spec_check_python() -> Path:
    """The private interpreter ``shared/tools/spec-check`` builds (same default location)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("SPEC_CHECK_VENV") or cache / "segsync-spec-check") / "bin" / "python"


def run_spec_check(platform: str, log: Path) -> tuple[int, str]:
    """(exit status, output) of ``spec-check validate --platform P LOG``, unmodified."""
    tool = _shared() / "tools" / "spec-check"
    proc = subprocess.run(  # noqa: S603 - fixed tool path and arguments
        ["/bin/bash", str(tool), "validate", "--platform", platform, "--summary", str(log)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def run_error_check(platform: str, log: Path) -> tuple[int, str]:
    """spec-check over error exchanges, reading ``*/*`` bodies as JSON (see module docstring)."""
    tools = _shared() / "tools"
    python = _spec_check_python()
    if not python.is_file():
        run_spec_check(platform, log)  # builds the checker's private virtualenv
    proc = subprocess.run(  # noqa: S603 - fixed interpreter, script and arguments
        [str(python), "-c", _JSON_ERRORS, str(tools), platform, str(log)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def check_traffic(platform: str, log: Path) -> list[str]:
    """Problems found in ``log``: successes by spec-check as is, errors with the JSON allowance."""
    lines = [x for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
    problems: list[str] = []
    for kind, errors, run in (("success", False, run_spec_check), ("errors", True, run_error_check)):
        part = log.with_name(f"{log.stem}.{kind}.jsonl")
        chosen = [x for x in lines if (int(json.loads(x)["status"]) >= 400) == errors]
        if not chosen:
            continue
        part.write_text("".join(f"{x}\n" for x in chosen), encoding="utf-8")
        status, out = run(platform, part)
        if status != 0:
            problems.append(f"{kind} exchanges ({part}):\n{out}")
    return problems


def assert_traffic_conforms(platform: str, log: Path) -> None:
    """Fail the calling test unless every exchange in ``log`` conforms; skip if no shared/."""
    import pytest

    if shared_dir() is None:
        pytest.skip("../shared (vendor OpenAPI specs and spec-check) is not beside this checkout; CI has it")
    if not log.is_file() or not log.read_text(encoding="utf-8").strip():
        pytest.fail(f"no traffic was recorded in {log}")
    problems = check_traffic(platform, log)
    assert not problems, "spec-check found non-conforming exchanges:\n" + "\n".join(problems)
