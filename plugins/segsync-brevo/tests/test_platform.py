"""The plugin as segsync sees it: entry point, registration, manifest, and the sandbox command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from pydantic import SecretStr

from segsync import CallRunner
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.project.manifest import load_platform_manifest
from segsync_brevo.config import BrevoSettings
from segsync_brevo.platform import BrevoPlatform
from segsync_brevo.sandbox import BrevoSandbox

from .conftest import KEY

MANIFEST = Path(__file__).resolve().parents[1] / "segsync_brevo" / "manifest.toml"


def test_the_entry_point_registers_the_platform():
    registry = build_registry(make_plugin_manager(environ={"SEGSYNC_LOAD_PLUGINS": "segsync-brevo"}))
    assert registry.platform("brevo") is BrevoPlatform
    assert registry.owners[("platform", "brevo")] == "brevo"


def test_the_platform_declares_what_the_engine_relies_on():
    assert BrevoPlatform.secret_env == "SEGSYNC_BREVO_API_KEY"
    assert BrevoPlatform.memberships_inline is True
    assert BrevoPlatform.incremental_purchases is True
    assert BrevoPlatform.Settings is BrevoSettings
    assert BrevoPlatform.sandbox() is BrevoSandbox


def test_create_makes_no_call_and_limits_follow_the_settings(quiet_sandbox):
    settings = BrevoSettings(base_url=quiet_sandbox.base_url, write_batch=4000)
    platform = BrevoPlatform.create(settings, secret=SecretStr(KEY), runner=CallRunner("brevo"))
    assert (platform.limits.write_batch, platform.limits.membership_batch) == (4000, 150)
    assert quiet_sandbox.server.requests_seen == 0
    platform.close()


def test_the_manifest_is_valid_and_matches_the_defaults():
    manifest = load_platform_manifest(MANIFEST)
    assert BrevoPlatform.manifest() == manifest
    assert manifest.platform.name == "brevo"
    defaults = BrevoSettings()
    created = {c.name for c in manifest.creates}
    assert defaults.folder_name in created
    assert defaults.import_list_name in created
    limits = {limit.name: limit.value for limit in manifest.limits}
    assert limits["contacts per list add/remove call"] == 150
    assert limits["contacts per page (GET /contacts)"] == defaults.contacts_page
    assert limits["deals per page (GET /crm/deals)"] == defaults.deals_page
    assert all(limit.source for limit in manifest.limits)


def test_segsync_sandbox_brevo_serves_the_seeded_store(tmp_path):
    log = tmp_path / "traffic.jsonl"
    cmd = [
        sys.executable, "-m", "segsync.cli", "sandbox", "brevo", "--api-key", KEY,
        "--seed", "demo", "--contacts", "40", "--traffic-log", str(log),
    ]  # fmt: skip
    env = {**os.environ, "SEGSYNC_LOAD_PLUGINS": "segsync-brevo"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # noqa: S603
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        base = line.rsplit(" ", 1)[-1].strip()
        assert base.endswith("/v3")
        page = httpx.get(f"{base}/contacts", params={"limit": 5}, headers={"api-key": KEY}, timeout=10)
        assert page.status_code == 200
        assert page.json()["count"] == 40
        assert httpx.get(f"{base}/contacts", headers={"api-key": "nope"}, timeout=10).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    logged = [json.loads(x) for x in log.read_text().splitlines()]
    assert [e["status"] for e in logged] == [200, 401]
    assert all(e["request_headers"].get("api-key") == "REDACTED" for e in logged)
