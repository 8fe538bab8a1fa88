"""A segsync project in a temporary folder, driven the way a user drives it: through the CLI.

The ``segsync_project`` pytest fixture (registered by :mod:`segsync.testing.pytest_plugin`)
hands tests a :class:`Project` factory, as tox's ``tox_project`` does for tox plugins: a
plugin's tests start its sandbox, run ``check``/``plan``/``sync``/``jobs`` and assert on the
:class:`Outcome` and on what the sandbox holds, without importing the engine or the state
store::

    def test_a_first_sync_writes_every_contact(segsync_project):
        project = segsync_project("hubspot", seed=demo_dataset(AS_OF, contacts=60))
        outcome = project.run("sync", "--as-of", "2026-01-15")
        outcome.assert_success()
        assert "wrote 59 contact(s)" in outcome.out
        assert project.sandbox.snapshot()["fields"]
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segsync.sandbox import SeedData

DEFAULT_SECRET = "segsync-project-secret-0123456789"  # noqa: S105 - what the loopback sandbox accepts


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit status and what it printed."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def assert_success(self) -> None:
        assert self.code == 0, f"segsync {' '.join(self.args)} exited {self.code}:\n{self.out}\n{self.err}"

    def assert_failed(self, code: int | None = None) -> None:
        assert self.code != 0, f"segsync {' '.join(self.args)} succeeded:\n{self.out}"
        if code is not None:
            assert self.code == code, f"exit {self.code}, expected {code}:\n{self.err}"


class Project:
    """A project folder with ``segsync.toml`` for one platform, pointed at a running sandbox."""

    def __init__(
        self,
        folder: Path,
        platform: str,
        *,
        seed: SeedData | None = None,
        secret: str = DEFAULT_SECRET,
        settings: Mapping[str, Any] | None = None,
        sandbox_options: Mapping[str, Any] | None = None,
    ) -> None:
        from segsync.plugins.manager import build_registry, make_plugin_manager

        self.folder = folder
        self.platform = platform
        self.secret = secret
        cls = build_registry(make_plugin_manager()).platform(platform)
        sandbox_cls = cls.sandbox()
        assert sandbox_cls is not None, f"platform {platform!r} ships no sandbox"
        self.secret_env = cls.secret_env
        self.sandbox: Any = sandbox_cls(secret=secret, **dict(sandbox_options or {}))
        if seed is not None:
            self.sandbox.seed(seed)
        self.sandbox.start()
        folder.mkdir(parents=True, exist_ok=True)
        self.run("init", "--platform", platform).assert_success()
        if settings:
            self._add_settings(settings)

    def _add_settings(self, settings: Mapping[str, Any]) -> None:
        from segsync.project.config import _toml_value

        path = self.folder / "segsync.toml"
        table = f"[platforms.{self.platform}]\n"
        lines = "".join(f"{k} = {_toml_value(v)}\n" for k, v in settings.items())
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(table, table + lines), encoding="utf-8")

    @property
    def env(self) -> dict[str, str]:
        """What a user exports before running segsync against the sandbox."""
        return {
            self.secret_env: self.secret,
            f"SEGSYNC_{self.platform.upper()}_BASE_URL": self.sandbox.base_url,
        }

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Outcome:
        """``segsync ARGS`` in the project folder, in-process, with the project's environment."""
        from segsync.cli import main

        out, err = io.StringIO(), io.StringIO()
        with (
            _in(self.folder),
            _environ({**self.env, **(env or {})}),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(list(args))
        return Outcome(tuple(args), code, out.getvalue(), err.getvalue())

    def close(self) -> None:
        self.sandbox.stop()


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """The project's variables on top of a clean slate of segsync's own (nothing leaks in)."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("SEGSYNC_", "BREVO_CLIENT")):
            del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class StateFile:
    """A state store for platform tests that run sync jobs themselves, on a fake clock.

    Each :meth:`sync` is one job of ``platform`` (the standard packs unless ``spec`` says
    otherwise), as a separate process would run it: its own lock owner, so a job left running
    by a simulated kill is taken over by the next one. Plugin tests use this instead of the
    engine and the state store::

        state = StateFile(tmp_path / "state.db", clock=clock)
        result = state.sync(platform, as_of=AS_OF)
        assert [j.status for j in state.jobs()] == ["succeeded"]
    """

    def __init__(self, path: Path, *, clock: Any = None) -> None:
        from segsync.testing.clock import FakeWallClock

        self.path = path
        self.clock = clock
        # one wall clock for every job: time a test lets pass between jobs shows in timestamps
        self.wall_clock = FakeWallClock(clock) if clock is not None else None
        self._process = 0

    def _open(self, process: int) -> Any:
        from segsync.sync.state import LockOwner, StateStore

        owner = LockOwner(process, "tests")
        return StateStore(self.path, wall_clock=self.wall_clock, owner=owner, alive={process})

    def sync(
        self,
        platform: Any,
        *,
        as_of: Any,
        spec: Any = None,
        account: str | None = None,
        dry_run: bool = False,
        full: bool = False,
        concurrency: int = 1,
    ) -> Any:
        """Run one job; returns its :class:`segsync.sync.engine.SyncResult` (a pause raises).
        ``concurrency``: write batches in flight at once (at most the platform's limit)."""
        from segsync.sync.engine import run_sync
        from segsync.testing.reliability import standard_spec

        self._process += 1
        with self._open(self._process) as store:
            return run_sync(
                platform,
                spec or standard_spec(),
                store=store,
                account=account or f"{platform.name}:tests",
                as_of=as_of,
                dry_run=dry_run,
                full=full,
                concurrency=concurrency,
            )

    def jobs(self, limit: int = 10) -> list[Any]:
        """The recent job records, newest first (``segsync jobs``)."""
        with self._open(0) as store:
            return list(store.recent_jobs(limit))


__all__ = ["Outcome", "Project", "StateFile"]
