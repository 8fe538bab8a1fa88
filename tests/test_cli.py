"""The command line, end to end: segsync's own CLI driving the real SDKs against the sandboxes.

Each test runs ``segsync.cli.main`` in-process with a sandbox on loopback, exactly as a user
would run the commands after ``segsync init``; one test runs the whole loop on a sandbox of its own
and checks that traffic against the vendor's OpenAPI spec.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.cli import main
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.sandbox import demo_dataset
from segsync.testing.spec import assert_traffic_conforms

AS_OF = dt.date(2026, 11, 2)
SECRET = "cli-test-secret-0123456789"
REGISTRY = build_registry(make_plugin_manager())
PLATFORMS = [p for p in ("hubspot", "brevo") if p in REGISTRY.platforms]


@pytest.fixture(scope="module")
def traffic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-traffic")


@pytest.fixture(params=PLATFORMS)
def crm(request: pytest.FixtureRequest, traffic_dir: Path) -> Iterator[tuple[str, object]]:
    name = request.param
    cls = REGISTRY.platform(name)
    sandbox_cls = cls.sandbox()
    assert sandbox_cls is not None
    sandbox = sandbox_cls(secret=SECRET, traffic_log=traffic_dir / f"{name}.jsonl")
    sandbox.seed(demo_dataset(AS_OF, contacts=120, seed=3))
    sandbox.start()
    try:
        yield name, sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("SEGSYNC_", "BREVO_CLIENT")):
            monkeypatch.delenv(key)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main([*args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def init(capsys, name: str, sandbox: object, monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    cls = REGISTRY.platform(name)
    assert run(capsys, "init", "--platform", name)[0] == 0
    if extra:  # settings go into the [platforms.<name>] table init wrote
        text = Path("segsync.toml").read_text(encoding="utf-8")
        table = f"[platforms.{name}]\n"
        assert table in text
        Path("segsync.toml").write_text(
            text.replace(table, table + "\n".join(extra) + "\n"), encoding="utf-8"
        )
    monkeypatch.setenv(f"SEGSYNC_{name.upper()}_BASE_URL", sandbox.base_url)  # type: ignore[attr-defined]
    monkeypatch.setenv(cls.secret_env, SECRET)


def test_plugins_lists_both_platforms(capsys):
    status, out, _ = run(capsys, "plugins")
    assert status == 0
    for name in PLATFORMS:
        assert f"segsync-{name}" in out


def test_plugins_honours_the_allow_list(capsys, monkeypatch):
    monkeypatch.setenv("SEGSYNC_LOAD_PLUGINS", "segsync-brevo")
    status, out, _ = run(capsys, "plugins")
    assert status == 0
    assert "segsync-brevo" in out
    assert "segsync-hubspot" not in out


@pytest.mark.parametrize("name", PLATFORMS)
def test_init_writes_a_config_that_checks_clean_offline(capsys, project, name):
    status, out, _ = run(capsys, "init", "--platform", name)
    assert status == 0
    assert (project / "segsync.toml").is_file()
    assert REGISTRY.platform(name).secret_env in out
    assert run(capsys, "check", "--offline")[0] == 0
    status, _, err = run(capsys, "init", "--platform", name)
    assert status == 2
    assert "already exists" in err
    assert len(err.strip().splitlines()) == 1
    assert run(capsys, "init", "--platform", name, "--force")[0] == 0


def test_init_unknown_platform_is_one_line(capsys, project):
    status, _, err = run(capsys, "init", "--platform", "salesforce")
    assert status == 2  # bad command-line input (docs/operations.md); was 1
    assert "no platform plugin named 'salesforce'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("typo", ["hubspt", "HubSpot", "brvo"])
def test_a_platform_typo_suggests_the_installed_one(capsys, project, typo):
    status, _, err = run(capsys, "init", "--platform", typo)
    assert status == 2
    wanted = "brevo" if typo.startswith("b") else "hubspot"
    assert f"did you mean {wanted}?" in err
    assert "pip install" not in err


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[rfm]\nbinz = 5\n", "rfm.binz"),
        ("[rfm]\nbins = 'five'\n", "rfm.bins"),
        ("[rfm\n", "segsync.toml"),
        ("[segments]\npacks = ['no-such-pack']\n", "no-such-pack"),
        (
            "[[segments.custom]]\nkey = 'x'\nlabel = 'X'\nmode = 'independent'\n"
            "[[segments.custom.segments]]\nkey = 'a'\nname = 'A'\n"
            "when = { field = 'order_count', op = 'almost', value = 1 }\n",
            "almost",
        ),
        (
            "[[segments.custom]]\nkey = 'x'\nlabel = 'X'\nmode = 'independent'\n"
            "[[segments.custom.segments]]\nkey = 'a'\nname = 'A'\n"
            "when = { field = 'shoe_size', op = 'gt', value = 1 }\n",
            "shoe_size",
        ),
    ],
)
def test_bad_config_is_a_one_line_error_naming_where(capsys, project, toml, expected):
    (project / "segsync.toml").write_text(toml, encoding="utf-8")
    status, out, err = run(capsys, "check", "--offline")
    assert status == 2
    assert expected in err
    assert "segsync.toml" in err
    assert len(err.strip().splitlines()) == 1


def test_a_segment_map_with_gaps_fails_check(capsys, project):
    (project / "segsync.toml").write_text(
        "[segments]\npacks = []\n"
        "[[segments.custom]]\nkey = 'tiers'\nlabel = 'Tiers'\nmode = 'exclusive'\nfield = 'segsync_tier'\n"
        "[[segments.custom.segments]]\nkey = 'big'\nname = 'Big'\n"
        "when = { field = 'order_count', op = 'gte', value = 10 }\n",
        encoding="utf-8",
    )
    status, out, err = run(capsys, "check", "--offline")
    assert status == 1
    assert "segments.custom[0]: no segment matches" in out
    for command in ("plan", "sync"):
        status, out, err = run(capsys, command)
        assert status == 2
        assert "segments.custom[0]: no segment matches" in err
        assert "nothing was written" in err
        assert len(err.strip().splitlines()) == 1


def test_as_of_comes_from_the_flag_then_the_config_then_today(project):
    from segsync.project.app import as_of_date
    from segsync.project.config import load_config

    (project / "segsync.toml").write_text("", encoding="utf-8")
    plain = load_config(project / "segsync.toml")
    (project / "segsync.toml").write_text("[rfm]\nas_of = 2025-06-30\n", encoding="utf-8")
    fixed = load_config(project / "segsync.toml")
    assert as_of_date(fixed, AS_OF) == AS_OF
    assert as_of_date(fixed, None) == dt.date(2025, 6, 30)
    assert as_of_date(plain, None) == dt.date.today()


def test_an_unexpected_error_is_one_line_without_its_text(capsys, project, monkeypatch):
    import segsync.project.history

    def boom(args):
        raise RuntimeError("Authorization: Bearer pat-secret and a body with jane@example.com")

    monkeypatch.setattr(segsync.project.history, "jobs", boom)
    status, out, err = run(capsys, "jobs")
    assert status == 1
    expected = "segsync: internal error (RuntimeError); run again with -vv for where it failed"
    assert err.strip() == expected


class FakeSdkError(Exception):
    """Stands for an SDK exception: its text carries response headers and a CRM body."""


def test_vv_shows_segsyncs_frames_never_an_exception_text_or_its_chain(capsys, project, monkeypatch):
    """Regression (issue 7.4): -vv re-raised, printing the chained SDK exception with headers and body."""
    import segsync.project.history

    def boom(args):
        try:
            raise FakeSdkError(
                "HTTP response headers: {'Authorization': 'Bearer pat-secret'} body: jane@example.com"
            )
        except FakeSdkError:
            raise ValueError("could not convert 'nan' from jane@example.com") from None

    def chained(args):
        try:
            raise FakeSdkError("body: jane@example.com")
        except FakeSdkError:
            int("x-hubspot says jane@example.com")

    for fn in (boom, chained):
        monkeypatch.setattr(segsync.project.history, "jobs", fn)
        assert main(["-vv", "jobs"]) == 1
        err = capsys.readouterr().err
        assert "segsync/cli.py" in err
        assert "ValueError" in err
        assert "jane@example.com" not in err
        assert "pat-secret" not in err
        assert "FakeSdkError" not in err


def test_missing_config_says_what_to_do(capsys, project):
    status, _, err = run(capsys, "plan")
    assert status == 2
    assert "segsync init" in err


def test_full_loop_check_plan_sync_resync_jobs(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch)
    status, out, err = run(capsys, "check")
    assert status == 0, out + err
    assert "credentials ok" in out

    status, out, err = run(capsys, "plan", "--as-of", AS_OF.isoformat())
    assert status == 0, err
    assert "dry run" in out
    assert "API calls" in out
    assert sandbox.snapshot()["field_defs"] == []  # type: ignore[attr-defined]

    status, out, err = run(capsys, "sync", "--as-of", AS_OF.isoformat())
    assert status == 0, err
    assert "succeeded" in out
    first = sandbox.snapshot()  # type: ignore[attr-defined]
    assert first["field_defs"]
    assert any(first["lists"].values())

    status, out, err = run(capsys, "sync", "--as-of", AS_OF.isoformat())
    assert status == 0, err
    assert "wrote 0 contact(s); list members +0 -0" in out
    assert "(0 writes)" in out
    assert sandbox.snapshot() == first  # type: ignore[attr-defined]

    buyer = sorted(first["fields"])[0]
    sandbox.add_purchase(buyer, Decimal("999.00"), dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))  # type: ignore[attr-defined]
    status, out, err = run(capsys, "sync", "--as-of", AS_OF.isoformat())
    assert status == 0, err
    after = sandbox.snapshot()  # type: ignore[attr-defined]
    assert after["fields"][buyer] != first["fields"][buyer]

    status, out, _ = run(capsys, "sync", "--full", "--retry-failed", "--as-of", AS_OF.isoformat())
    assert status == 0
    assert "wrote 0 contact(s)" in out

    status, out, _ = run(capsys, "jobs", "--rejections")
    assert status == 0
    assert out.count("succeeded") >= 4
    assert "dry run" in out
    assert "records rejected by job" in out
    assert "missing email" in out

    # The secret is never printed and never stored.
    state = (project / ".segsync" / "state.db").read_bytes()
    assert SECRET.encode() not in state
    wal = project / ".segsync" / "state.db-wal"
    assert not wal.exists() or SECRET.encode() not in wal.read_bytes()


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
def test_hubspot_dynamic_lists_are_kept_by_hubspot(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch, 'list_type = "DYNAMIC"')
    status, out, err = run(capsys, "sync", "--as-of", AS_OF.isoformat())
    assert status == 0, err
    assert "list members +0 -0" in out  # no membership calls: HubSpot evaluates the filters
    snap = sandbox.snapshot()  # type: ignore[attr-defined]
    champions = snap["lists"]["segsync · Champions"]
    assert champions
    assert all(snap["fields"][c]["segsync_rfm_segment"] == "champions" for c in champions)


def test_wrong_token_is_one_line_without_the_token(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch)
    # Brevo's spec documents no 401 answers, so spec-check cannot judge these exchanges.
    sandbox.server.traffic_log = None  # type: ignore[attr-defined]
    monkeypatch.setenv(REGISTRY.platform(name).secret_env, "wrong-secret-abcdef")
    for command in ("check", "sync"):
        status, out, err = run(capsys, command)
        assert status == 1
        assert "wrong-secret-abcdef" not in out + err
        assert len(err.strip().splitlines()) == 1
        assert "401" in err or "rejected" in err or "invalid" in err


def test_missing_token_names_the_variable(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch)
    env = REGISTRY.platform(name).secret_env
    monkeypatch.delenv(env)
    status, _, err = run(capsys, "sync")
    assert status == 2
    assert env in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", PLATFORMS)
def test_unreachable_base_url_fails_cleanly(capsys, project, monkeypatch, name):
    cls = REGISTRY.platform(name)
    run(capsys, "init", "--platform", name)
    with open("segsync.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[retry]\nmax_attempts = 2\nbackoff_initial = 0.01\nbackoff_max = 0.02\n")
    monkeypatch.setenv(
        f"SEGSYNC_{name.upper()}_BASE_URL", "http://127.0.0.1:9" + ("/v3" if name == "brevo" else "")
    )
    monkeypatch.setenv(cls.secret_env, SECRET)
    status, out, err = run(capsys, "sync")
    assert status == 1
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in out + err


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)  # the user-property helper is HubSpot's
def test_check_reports_a_property_of_another_type(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    sandbox.add_user_property("segsync_revenue", "string", "text")  # type: ignore[attr-defined]
    sandbox.add_user_list("segsync · Champions")  # type: ignore[attr-defined]
    init(capsys, name, sandbox, monkeypatch)
    status, out, _ = run(capsys, "check")
    assert status == 1
    assert "conflict: field segsync_revenue" in out
    assert "segsync · Champions" in out
    status, out, err = run(capsys, "sync", "--as-of", AS_OF.isoformat())
    snap = sandbox.snapshot()  # type: ignore[attr-defined]
    assert all("segsync_revenue" not in values for values in snap["fields"].values())


@pytest.mark.parametrize("crm", ["brevo"], indirect=True)  # the only hourly budget a pull can spend
def test_plan_that_spends_brevos_hourly_budget_says_what_it_means(capsys, project, crm, monkeypatch):
    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch, "other_per_hour = 2")
    status, out, err = run(capsys, "plan", "--as-of", AS_OF.isoformat())
    assert status == 75
    assert "takes more than 60 min" in out
    assert "A plan keeps nothing it pulls" in out  # it never writes the ledger a sync owns
    assert "run `segsync sync`, which saves its pull as it goes" in out
    errors = [line for line in err.splitlines() if not line.startswith("pull_")]  # progress lines
    assert len(errors) == 1
    assert "rate budget is spent" in errors[0]


@pytest.mark.parametrize("name", PLATFORMS)
def test_cli_traffic_conforms_to_the_vendor_specs(capsys, project, monkeypatch, tmp_path, name):
    """The whole loop through the CLI on a sandbox of its own, its traffic spec-checked: no
    dependence on which tests ran before (it used to check the module's traffic, run last)."""
    cls = REGISTRY.platform(name)
    sandbox_cls = cls.sandbox()
    assert sandbox_cls is not None
    log = tmp_path / f"{name}.jsonl"
    sandbox = sandbox_cls(secret=SECRET, traffic_log=log)
    sandbox.seed(demo_dataset(AS_OF, contacts=120, seed=3))
    sandbox.start()
    try:
        init(capsys, name, sandbox, monkeypatch)
        for args in (
            ("check",),
            ("plan", "--as-of", AS_OF.isoformat()),
            ("sync", "--as-of", AS_OF.isoformat()),
        ):
            status, out, err = run(capsys, *args)
            assert status == 0, out + err
        buyer = sorted(sandbox.snapshot()["fields"])[0]
        sandbox.add_purchase(buyer, Decimal("999.00"), dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
        assert run(capsys, "sync", "--as-of", AS_OF.isoformat())[0] == 0
        assert run(capsys, "jobs")[0] == 0
    finally:
        sandbox.stop()
    assert log.stat().st_size > 0
    assert_traffic_conforms(name, log)


@pytest.mark.parametrize(
    ("name", "url", "expected"),
    [
        (
            "hubspot",
            "api.hubapi.com",
            "must start with http:// or https:// (write it as https://api.hubapi.com)",
        ),
        ("hubspot", "https://api.hubapi.com/?hapikey=secret-in-url", "must not have a query string"),
        ("brevo", "https://api.brevo.com", "must end with /v3"),
        ("brevo", "https://user:pw@api.brevo.com/v3", "must not hold a user name or password"),
        ("brevo", "https:///v3", "names no host"),
    ],
)
def test_unusable_base_urls_are_refused_before_any_call(capsys, project, monkeypatch, name, url, expected):
    """Regression (issue 7.7): a Brevo URL without /v3 gave a misleading 401; others failed late."""
    if name not in PLATFORMS:
        pytest.skip(f"{name} plugin not installed")
    assert run(capsys, "init", "--platform", name)[0] == 0
    monkeypatch.setenv(REGISTRY.platform(name).secret_env, SECRET)
    monkeypatch.setenv(f"SEGSYNC_{name.upper()}_BASE_URL", url)
    status, _, err = run(capsys, "sync")
    assert status == 2
    assert expected in err
    assert f"SEGSYNC_{name.upper()}_BASE_URL" in err
    assert "secret-in-url" not in err
    assert "pw@" not in err
    monkeypatch.delenv(f"SEGSYNC_{name.upper()}_BASE_URL")
    text = Path("segsync.toml").read_text(encoding="utf-8")
    Path("segsync.toml").write_text(
        text.replace(f"[platforms.{name}]\n", f'[platforms.{name}]\nbase_url = "{url}"\n'), encoding="utf-8"
    )
    status, _, err = run(capsys, "check", "--offline")
    assert status == 2
    assert expected in err
    assert f"[platforms.{name}]" in err


def test_an_as_of_far_from_today_warns(capsys, tmp_path):
    from segsync.project.app import as_of_date
    from segsync.project.config import ProjectConfig

    config = ProjectConfig(path=tmp_path / "segsync.toml")
    today = dt.date(2026, 12, 1)
    assert as_of_date(config, dt.date(2026, 6, 1), today=today) == dt.date(2026, 6, 1)
    assert capsys.readouterr().err == ""
    as_of_date(config, dt.date(2024, 1, 1), today=today)
    assert "warning: scoring as of 2024-01-01, 1065 days from today" in capsys.readouterr().err


def test_plan_and_sync_load_the_packs_once(capsys, project, crm, monkeypatch):
    """Issue 8: packs were loaded for the lint gate and again inside sync_project."""
    import segsync.project.packs as packs

    name, sandbox = crm
    init(capsys, name, sandbox, monkeypatch)
    calls = []
    real = packs.load_packs
    monkeypatch.setattr(packs, "load_packs", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run(capsys, "plan", "--as-of", AS_OF.isoformat())[0] == 0
    assert len(calls) == 1


def test_a_sandbox_plan_is_its_rate_limit_keywords():
    from segsync.cli import _plan_options
    from segsync.errors import ConfigError
    from segsync_brevo.sandbox import BrevoSandbox
    from segsync_hubspot.sandbox import HubSpotSandbox

    assert _plan_options(BrevoSandbox, "advanced") == {"rate_tier": "advanced"}
    assert _plan_options(HubSpotSandbox, "free") == {"rate_limit": 100, "daily_limit": 250_000}
    assert _plan_options(HubSpotSandbox, None) == {}
    with pytest.raises(ConfigError, match="knows general, advanced, extended"):
        _plan_options(BrevoSandbox, "pro")
    sandbox = HubSpotSandbox(secret="t", **_plan_options(HubSpotSandbox, "enterprise"))
    assert sandbox.rate_windows()["daily"] == [(1_000_000, 86_400.0)]


def test_sandbox_options_are_the_sandboxs_own_keywords():
    from segsync.cli import _sandbox_options
    from segsync.errors import ConfigError
    from segsync_brevo.sandbox import BrevoSandbox

    got = _sandbox_options(
        BrevoSandbox,
        ["rate_tier=general", "honour_deal_sort=false", "other_per_hour=60", "import_step_seconds=0.5"],
    )
    assert got == {
        "rate_tier": "general",
        "honour_deal_sort": False,
        "other_per_hour": 60,
        "import_step_seconds": 0.5,
    }
    with pytest.raises(ConfigError, match="KEY one of rate_tier, other_per_hour"):
        _sandbox_options(BrevoSandbox, ["tier=general"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        _sandbox_options(BrevoSandbox, ["rate_tier"])
