"""Issue 7.1: a project whose credential changes to another account reuses nothing it remembered.

Both accounts are served on the same host and port (as every HubSpot portal is on one API
host): the first account's sandbox is stopped and the second's started in its place. The second
account has lists of its own carrying the ids segsync's lists had in the first. Through the CLI
and the real SDKs, the second sync must leave those lists alone and end exactly as a clean first
sync of the second account in a new project does.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from segsync.cli import main
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.sandbox import demo_dataset
from segsync.sync.state import StateStore

pytestmark = pytest.mark.e2e

AS_OF = dt.date(2026, 11, 2)
REGISTRY = build_registry(make_plugin_manager())
PLATFORMS = [p for p in ("hubspot", "brevo") if p in REGISTRY.platforms]
FIRST, SECOND = "acct-one-secret-0123456789", "acct-two-secret-9876543210"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SEGSYNC_", "BREVO_CLIENT")):
            monkeypatch.delenv(key)


def sandbox(name: str, secret: str, port: int, seed: int) -> Any:
    cls = REGISTRY.platform(name).sandbox()
    assert cls is not None
    box = cls(secret=secret, port=port)
    box.seed(demo_dataset(AS_OF, contacts=60, seed=seed))
    return box


def sync(folder: Path, name: str, box: Any, secret: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(folder)
    if not (folder / "segsync.toml").exists():
        assert main(["init", "--platform", name]) == 0
    monkeypatch.setenv(f"SEGSYNC_{name.upper()}_BASE_URL", box.base_url)
    monkeypatch.setenv(REGISTRY.platform(name).secret_env, secret)
    assert main(["sync", "-q", "--as-of", AS_OF.isoformat()]) == 0
    return box.base_url  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", PLATFORMS)
def test_another_account_on_the_same_host_is_a_fresh_start(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    clean_env: None,
) -> None:
    project, reference = tmp_path / "project", tmp_path / "reference"
    project.mkdir()
    reference.mkdir()
    first = sandbox(name, FIRST, 0, seed=3)
    first.start()
    try:
        first_url = sync(project, name, first, FIRST, monkeypatch)
        first_lists = _segsync_list_ids(first)
    finally:
        first.stop()
    port = int(first_url.rsplit(":", 1)[1].split("/")[0])

    second = sandbox(name, SECOND, port, seed=11)
    own = {second.add_user_list(f"Newsletter {i}", members=["1", "2"]) for i in range(len(first_lists) + 2)}
    assert own & first_lists, "the second account's own lists must carry ids the first's lists had"
    before = {lid: second.list_member_ids(lid) for lid in own}
    second.start()
    try:
        assert sync(project, name, second, SECOND, monkeypatch) == first_url  # the same host and port
        after = {lid: second.list_member_ids(lid) for lid in own}
        got = second.snapshot()
    finally:
        second.stop()
    assert after == before
    assert "kept apart" in caplog.text

    clean = sandbox(name, SECOND, 0, seed=11)
    for i in range(len(own)):
        clean.add_user_list(f"Newsletter {i}", members=["1", "2"])
    clean.start()
    try:
        sync(reference, name, clean, SECOND, monkeypatch)
        assert got == clean.snapshot()
    finally:
        clean.stop()
    with StateStore(project / ".segsync" / "state.db") as store:
        accounts = store.accounts(name)
    assert len(accounts) == 2
    assert all(FIRST not in a and SECOND not in a for a in accounts)


def _segsync_list_ids(box: Any) -> set[str]:
    if hasattr(box, "account"):  # HubSpot
        return {lst.id for lst in box.account.lists.values() if lst.managed}
    return {str(lid) for lid in box.lists}


@pytest.mark.parametrize("name", PLATFORMS)
def test_check_names_the_account(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    box = sandbox(name, FIRST, 0, seed=3)
    box.start()
    try:
        monkeypatch.chdir(tmp_path)
        assert main(["init", "--platform", name]) == 0
        monkeypatch.setenv(f"SEGSYNC_{name.upper()}_BASE_URL", box.base_url)
        monkeypatch.setenv(REGISTRY.platform(name).secret_env, FIRST)
        capsys.readouterr()
        main(["check"])
        out = capsys.readouterr().out
    finally:
        box.stop()
    assert f"{name}: account {box.account_id}" in out
