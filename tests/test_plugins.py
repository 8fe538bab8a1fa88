"""Plugins: every hook tested (enforced), the registry's checks, and the loading env variables."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap

import pytest

import segsync.testing.fake
from segsync import hookimpl
from segsync.core.report import JobInfo
from segsync.errors import PluginError
from segsync.plugins import hookspecs
from segsync.plugins.manager import Hooks, build_registry, list_plugins, make_plugin_manager
from segsync.plugins.registry import PlatformRegister
from segsync.sandbox import demo_dataset
from segsync.sync.engine import run_sync
from segsync.sync.state import StateStore
from segsync.testing import FakeClock, FakePlatform, FakeWallClock, FakeWorld, make_runner
from segsync.testing.reliability import standard_spec

AS_OF = dt.date(2026, 1, 15)
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "segsync_spec"))


def manager(*plugins: object):
    pm = make_plugin_manager(load_entrypoints=False)
    for n, plugin in enumerate(plugins):
        pm.register(plugin, name=f"test-plugin-{n}")
    return pm


def test_every_hook_has_a_test():
    """datasette's rule: a ``test_hook_<name>`` for each hookspec, so no hook ships untested."""
    missing = [name for name in HOOKS if f"test_hook_{name}" not in globals()]
    assert HOOKS
    assert not missing, f"write test_hook_<name> for: {', '.join(missing)}"


# -- contributing hooks ---------------------------------------------------------------------


def test_hook_register_platforms():
    pm = manager(segsync.testing.fake)
    registry = build_registry(pm)
    assert registry.platform("fake") is FakePlatform
    assert registry.owners[("platform", "fake")] == "test-plugin-0"
    with pytest.raises(PluginError, match="no platform plugin named 'nope'.*pip install segsync-nope"):
        registry.platform("nope")


def test_hook_register_features():
    class Plugin:
        @hookimpl
        def register_features(self, register):
            register("lucky_number", lambda contact, summary, as_of: 7, type="number", description="always 7")

    registry = build_registry(manager(Plugin()))
    feature = registry.features["lucky_number"]
    assert (feature.type, feature.description, feature.plugin) == ("number", "always 7", "test-plugin-0")
    assert feature.compute(None, None, AS_OF) == 7


def test_hook_register_rule_operators():
    class Plugin:
        @hookimpl
        def register_rule_operators(self, register):
            register("is_even", lambda value, arg, as_of: value % 2 == 0, arg="none", types=("number",))

    registry = build_registry(manager(Plugin()))
    op = registry.operators["is_even"]
    assert (op.arg, op.plugin, op.types) == ("none", "test-plugin-0", ("number",))
    assert op.test(4, None, AS_OF)


# -- notification hooks (through a real sync on the fake CRM) --------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def sync_started(self, job):
        self.calls.append(("sync_started", job))

    @hookimpl
    def segment_changed(self, change):
        self.calls.append(("segment_changed", change))

    @hookimpl
    def sync_finished(self, report):
        self.calls.append(("sync_finished", report))

    def of(self, name):
        return [arg for n, arg in self.calls if n == name]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """One real sync of a small demo store, observed by a recording plugin."""
    clock = FakeClock()
    world = FakeWorld()
    world.start(demo_dataset(AS_OF, contacts=30), clock=clock)
    recorder = Recorder()
    path = tmp_path_factory.mktemp("plugins") / "state.db"
    with StateStore(path, wall_clock=FakeWallClock(clock)) as store:
        result = run_sync(
            world.connect(make_runner(world, clock)),
            standard_spec(),
            store=store,
            account="fake:plugins",
            as_of=AS_OF,
            hooks=Hooks(manager(recorder)),
        )
    return recorder, result


def test_hook_sync_started(synced):
    recorder, result = synced
    (job,) = recorder.of("sync_started")
    assert recorder.calls[0][0] == "sync_started"
    assert job == result.report.job
    assert (job.platform, job.as_of, job.dry_run) == ("fake", AS_OF, False)


def test_hook_segment_changed(synced):
    recorder, result = synced
    changes = recorder.of("segment_changed")
    assert result.desired is not None
    assert len(changes) == len(result.desired.changes) > 0
    first = changes[0]
    assert (first.platform, first.segment_set, first.old) == ("fake", "rfm", None)
    assert first.new is not None


def test_hook_sync_finished(synced):
    recorder, result = synced
    (report,) = recorder.of("sync_finished")
    assert recorder.calls[-1][0] == "sync_finished"
    assert report.status == "succeeded"
    assert report.contacts_written == result.report.contacts_written > 0


def test_hook_implementations_may_take_fewer_arguments():
    seen = []

    class Minimal:
        @hookimpl
        def sync_started(self):
            seen.append("started")

    Hooks(manager(Minimal())).sync_started(JobInfo(job_id=1, platform="fake", as_of=AS_OF))
    assert seen == ["started"]


# -- the registry's checks ------------------------------------------------------------------


def test_a_platform_registered_twice_names_both_plugins():
    class Twin:
        @hookimpl
        def register_platforms(self, register):
            register(FakePlatform)

    with pytest.raises(PluginError) as err:
        build_registry(manager(segsync.testing.fake, Twin()))
    text = str(err.value)
    assert "'test-plugin-0'" in text
    assert "'test-plugin-1'" in text
    assert "platform 'fake'" in text
    assert "SEGSYNC_DISABLE_PLUGINS=" in text


def test_a_feature_clashing_with_a_builtin_names_the_builtin():
    builtin = next(iter(build_registry(manager()).features))

    class Clash:
        @hookimpl
        def register_features(self, register):
            register(builtin, lambda c, s, a: 0)

    with pytest.raises(PluginError, match=f"feature '{builtin}', which plugin 'segsync.default_plugins"):
        build_registry(manager(Clash()))


@pytest.mark.parametrize("missing", ["write_fields", "secret_env", "call_cost"])
def test_an_incomplete_platform_class_is_refused(missing):
    incomplete = type("Incomplete", (FakePlatform,), {})
    original = getattr(FakePlatform, missing)
    try:
        delattr(FakePlatform, missing)
        with pytest.raises(PluginError, match=f"lacks {missing}"):
            PlatformRegister(build_registry(manager()), "p")(incomplete)
    finally:
        setattr(FakePlatform, missing, original)


def test_platform_settings_must_be_platform_settings():
    bad = type("Bad", (FakePlatform,), {"Settings": dict, "name": "bad"})
    with pytest.raises(PluginError, match="must subclass PlatformSettings"):
        PlatformRegister(build_registry(manager()), "p")(bad)


def features_plugin(*args, **kw):
    class Plugin:
        @hookimpl
        def register_features(self, register):
            register(*args, **kw)

    return Plugin()


def operators_plugin(*args, **kw):
    class Plugin:
        @hookimpl
        def register_rule_operators(self, register):
            register(*args, **kw)

    return Plugin()


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (features_plugin("not an identifier", lambda c, s, a: 1), "needs an identifier name and a function"),
        (features_plugin("fine_name", "not callable"), "needs an identifier name and a function"),
        (operators_plugin("op", lambda v, a, d: True, arg="many"), "unknown arg kind 'many'"),
        (operators_plugin("op", lambda v, a, d: True, types=("colour",)), "unknown field type"),
    ],
)
def test_bad_contributions_are_refused_with_the_plugin_named(plugin, message):
    with pytest.raises(PluginError, match=message) as err:
        build_registry(manager(plugin))
    assert "plugin 'test-plugin-0'" in str(err.value)


def test_a_plugin_crashing_in_a_register_hook_is_named():
    class Crash:
        @hookimpl
        def register_features(self, register):
            raise KeyError("oops")

    with pytest.raises(PluginError, match="plugin 'test-plugin-0' failed in register_features: KeyError"):
        build_registry(manager(Crash()))


# -- entry points and the environment variables ------------------------------------------------


def install(tmp_path, monkeypatch, name: str, source: str) -> None:
    """A tiny installed distribution with a ``segsync`` entry point, on sys.path."""
    module = f"segsync_{name}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = tmp_path / f"{module}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: segsync-{name}\nVersion: 0.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[segsync]\n{name} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


GOOD = """
    from segsync import hookimpl

    @hookimpl
    def register_features(register):
        register("tpdemo_score", lambda contact, summary, as_of: 1, description="from an entry point")
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "tpdemo", GOOD)


def test_entry_point_plugins_are_loaded_and_listed(installed):
    pm = make_plugin_manager(environ={"SEGSYNC_LOAD_PLUGINS": "tpdemo"})
    assert "tpdemo_score" in build_registry(pm).features
    (info,) = [p for p in list_plugins(pm) if p.name == "tpdemo"]
    assert (info.distribution, info.version, info.hooks) == ("segsync-tpdemo", "0.3", ("register_features",))


@pytest.mark.parametrize(
    ("environ", "loaded"),
    [
        ({"SEGSYNC_LOAD_PLUGINS": "segsync-tpdemo"}, True),
        ({"SEGSYNC_LOAD_PLUGINS": "somethingelse"}, False),
        ({"SEGSYNC_LOAD_PLUGINS": ""}, False),
        ({"SEGSYNC_LOAD_PLUGINS": "tpdemo", "SEGSYNC_DISABLE_PLUGINS": "tpdemo"}, False),
        ({"SEGSYNC_LOAD_PLUGINS": "tpdemo", "SEGSYNC_DISABLE_PLUGINS": "segsync-tpdemo"}, False),
    ],
)
def test_load_and_disable_variables(installed, environ, loaded):
    pm = make_plugin_manager(environ=environ)
    assert ("tpdemo_score" in build_registry(pm).features) is loaded
    assert ("tpdemo" in {p.name for p in list_plugins(pm)}) is loaded


def test_a_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "tpbroken", "raise ImportError('missing dependency')\n")
    with pytest.raises(PluginError, match="plugin 'tpbroken'.*SEGSYNC_DISABLE_PLUGINS=tpbroken"):
        make_plugin_manager(environ={"SEGSYNC_LOAD_PLUGINS": "tpbroken"})


def test_trace_variable_prints_hook_calls(capsys):
    pm = make_plugin_manager(load_entrypoints=False, environ={"SEGSYNC_TRACE_PLUGINS": "1"})
    Hooks(pm).sync_started(JobInfo(job_id=3, platform="fake", as_of=AS_OF))
    err = capsys.readouterr().err
    assert "segsync hook sync_started" in err
    assert "kwargs=['job']" in err


def test_no_trace_without_the_variable(capsys):
    Hooks(make_plugin_manager(load_entrypoints=False, environ={})).sync_started(
        JobInfo(job_id=3, platform="fake", as_of=AS_OF)
    )
    assert capsys.readouterr().err == ""


def test_register_hooks_run_through_pluggys_call_loop(capsys):
    """Issue 8: tracing and monitoring see the register_* calls (they were called impl by impl)."""
    pm = make_plugin_manager(environ={"SEGSYNC_TRACE_PLUGINS": "1"})  # the installed plugins too
    seen: list[str] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *a: None)
    build_registry(pm)
    assert {"register_platforms", "register_features", "register_rule_operators"} <= set(seen)
    assert "segsync hook register_features" in capsys.readouterr().err


def test_register_objects_have_named_methods():
    from segsync.plugins.registry import FeatureRegister, OperatorRegister, PlatformRegister, Registry

    registry = Registry()
    FeatureRegister(registry, "p").add_feature("f1", lambda c, s, a: 1, type="number")
    OperatorRegister(registry, "p").add_operator("op1", lambda v, arg, a: True, arg="none")
    assert registry.features["f1"].plugin == "p"
    assert registry.operators["op1"].arg == "none"
    with pytest.raises(PluginError, match="lacks"):
        PlatformRegister(registry, "p").add_platform(object)  # type: ignore[arg-type]
