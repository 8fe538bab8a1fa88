"""Segment packs and platform manifests: the shipped ones validate, bad ones fail on one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from segsync.core.rules import AllOf, Condition, evaluate
from segsync.core.segments import RFM_SEGMENT_FIELD, SegmentPack
from segsync.errors import ConfigError, ManifestError
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.config import parse_config
from segsync.project.manifest import (
    SHIPPED_DIR,
    PlatformManifest,
    available_packs,
    load_pack,
    load_platform_manifest,
    validate_manifest_file,
)
from segsync.project.packs import load_packs

ROOT = Path(__file__).resolve().parents[1]
MANIFEST_FILES = sorted([*(ROOT / "manifests").glob("*.toml"), *(ROOT / "plugins").glob("*/*/manifest.toml")])


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp dir: messages name files relative to it (``segsync.toml: ...``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


HEAD = '[pack]\nname = "t"\n'
SET = '[[sets]]\nkey = "s"\nmode = "exclusive"\n'


def segment(when: str, key: str = "a", extra: str = "") -> str:
    return f'[[sets.segments]]\nkey = "{key}"\nname = "{key.upper()}"\nwhen = {when}\n{extra}'


def load_text(folder: Path, text: str, registry: Registry, **params: object) -> SegmentPack:
    path = folder / "pack.toml"
    path.write_text(text, encoding="utf-8")
    return load_pack("pack.toml", root=folder, params=params, registry=registry)


# -- shipped ---------------------------------------------------------------------------------


def test_manifest_files_found():
    names = {p.name for p in MANIFEST_FILES}
    assert {"rfm-standard.toml", "lifecycle.toml"} <= names


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_file_validates(path, registry):
    assert isinstance(validate_manifest_file(path, registry=registry), SegmentPack | PlatformManifest)


def test_shipped_packs_are_found_by_name():
    assert available_packs() == ["lifecycle", "rfm-standard"]
    assert (SHIPPED_DIR / "rfm-standard.toml").is_file()


def test_standard_pack_is_the_classic_grid(registry):
    pack = load_pack("rfm-standard", root=Path("."), params={}, registry=registry)
    (rfm,) = pack.sets
    assert rfm.exclusive
    assert rfm.field == RFM_SEGMENT_FIELD
    assert not rfm.allow_gaps
    keys = [s.key for s in rfm.segments]
    assert keys == [
        "champions",
        "loyal_customers",
        "potential_loyalists",
        "new_customers",
        "promising",
        "need_attention",
        "about_to_sleep",
        "at_risk",
        "cant_lose_them",
        "hibernating",
        "no_purchase",
    ]
    assert all(s.description and s.intent for s in rfm.segments)
    assert [s.list for s in rfm.segments] == [True] * 10 + [False]
    assert rfm.segments[0].list_name == "segsync · Champions"
    assert rfm.fields == {"rfm_r", "rfm_f", "has_purchased"}


def test_lifecycle_pack_params_and_overrides(registry):
    pack = load_pack("lifecycle", root=Path("."), params={"vip_min_average_order": 300}, registry=registry)
    assert pack.params["vip_min_average_order"] == 300
    assert pack.params["vip_min_orders"] == 3
    (lifecycle,) = pack.sets
    assert not lifecycle.exclusive
    assert lifecycle.field is None
    vip = lifecycle.segments[0].rule
    assert isinstance(vip, AllOf)
    first = vip.children[0]
    assert isinstance(first, Condition)
    assert first.field == "average_order"
    assert first.arg == 300


# -- bad packs -------------------------------------------------------------------------------

COND = '{ field = "order_count", op = "gte", value = 2 }'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[pack]\nname = "t"\n', "pack.toml: sets: required key is missing"),
        (
            HEAD + '[[sets]]\nkey = "s"\nmode = "exclusive"\nsegments = []\n',
            "pack.toml: sets[0].segments: List should",
        ),
        (
            HEAD + SET + '[[sets.segments]]\nkey = "a"\nnmae = "A"\n',
            "pack.toml: sets[0].segments[0].nmae: unknown key (allowed here: description, intent, key, list, "
            "name, when) (did you mean 'name'?; +1 more problem(s) in this file)",
        ),
        (
            HEAD + SET + "lists = 'maybe'\n" + segment(COND),
            "pack.toml: sets[0].lists: Input should be a valid boolean",
        ),
        (
            HEAD + '[[sets]]\nkey = "s"\nmode = "ordered"\n' + segment(COND),
            "pack.toml: sets[0].mode: Input should be",
        ),
        (
            HEAD + SET + segment(COND, key="Champions"),
            "pack.toml: sets[0].segments[0].key: String should match",
        ),
        (
            HEAD + SET + 'field = "rfm_segment"\n' + segment(COND),
            "pack.toml: sets[0].field: String should match",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "greater", value = 2 }'),
            "pack.toml: sets[0].segments[0].when.op: unknown operator 'greater'; valid: between, eq, "
            "exists, gt, "
            "gte, in, lt, lte, neq, older_than_days, within_last_days",
        ),
        (
            HEAD + SET + segment('{ field = "orders_count", op = "gte", value = 2 }'),
            "pack.toml: sets[0].segments[0].when.field: unknown field 'orders_count' (neither a feature "
            "nor a "
            "declared property) (did you mean 'order_count'?)",
        ),
        (
            HEAD + SET + segment('{ field = "plan", op = "eq", value = "pro" }'),
            "pack.toml: sets[0].segments[0].when.field: unknown field 'plan' (neither a feature nor a "
            "declared "
            "property) (declare contact properties under [properties])",
        ),
        (
            HEAD + SET + segment('{ field = "country", op = "gt", value = "FR" }'),
            "pack.toml: sets[0].segments[0].when.op: operator 'gt' does not apply to string field 'country' "
            "(it applies to number, date fields)",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "within_last_days", value = 3 }'),
            "pack.toml: sets[0].segments[0].when.op: operator 'within_last_days' does not apply to number "
            "field "
            "'order_count' (it applies to date fields)",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "eq", value = "5" }'),
            "pack.toml: sets[0].segments[0].when.value: field 'order_count' is a number; got '5'",
        ),
        (
            HEAD + SET + segment('{ field = "country", op = "eq", value = 5 }'),
            "pack.toml: sets[0].segments[0].when.value: field 'country' is a string; got 5 (quote it)",
        ),
        (
            HEAD + SET + segment('{ field = "has_purchased", op = "eq", value = "no" }'),
            "pack.toml: sets[0].segments[0].when.value: field 'has_purchased' is a boolean; got 'no'",
        ),
        (
            HEAD + SET + segment('{ field = "last_purchase", op = "gt", value = "last year" }'),
            "pack.toml: sets[0].segments[0].when.value: field 'last_purchase' is a date; got 'last year'",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "gt" }'),
            "pack.toml: sets[0].segments[0].when: operator 'gt' needs value = a value",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "between", value = [1, 2, 3] }'),
            "pack.toml: sets[0].segments[0].when.value: 'between' takes [low, high], got 3 value(s)",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "between", value = [5, 2] }'),
            "pack.toml: sets[0].segments[0].when.value: 'between' takes [low, high] with low <= high",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "in", value = 2 }'),
            "pack.toml: sets[0].segments[0].when.value: 'in' takes a list, got 2",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "in", value = [] }'),
            "pack.toml: sets[0].segments[0].when.value: 'in' needs at least one value",
        ),
        (
            HEAD + SET + segment('{ field = "email", op = "exists", value = 3 }'),
            "pack.toml: sets[0].segments[0].when.value: 'exists' takes no value, or value = false",
        ),
        (
            HEAD + SET + segment('{ field = "last_purchase", op = "within_last_days", value = -3 }'),
            "pack.toml: sets[0].segments[0].when.value: 'within_last_days' takes a whole number of days >= 0",
        ),
        (
            HEAD + SET + segment('{ field = "last_purchase", op = "within_last_days", value = 2.5 }'),
            "pack.toml: sets[0].segments[0].when.value: 'within_last_days' takes a whole number of days >= 0",
        ),
        (
            HEAD + SET + segment(f'{{ all = [ {COND}, {{ field = "rfm_r", op = "eq", value = "5" }} ] }}'),
            "pack.toml: sets[0].segments[0].when.all[1].value: field 'rfm_r' is a number; got '5'",
        ),
        (
            HEAD
            + SET
            + segment(f'{{ any = [ {COND}, {{ not = {{ field = "rfm_x", op = "eq", value = 5 }} }} ] }}'),
            "pack.toml: sets[0].segments[0].when.any[1].not.field: unknown field 'rfm_x'",
        ),
        (
            HEAD + SET + segment(f"{{ all = {COND} }}"),
            "pack.toml: sets[0].segments[0].when.all: 'all' takes a list of rules",
        ),
        (
            HEAD + SET + segment(f'{{ all = [{COND}], field = "x" }}'),
            "pack.toml: sets[0].segments[0].when: a rule table holds exactly one of all/any/not, found "
            "all, field",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "gte", valeu = 2 }'),
            "pack.toml: sets[0].segments[0].when.valeu: unknown key; a rule is {all|any|not = ...} or "
            "{field, op, value} (did you mean 'value'?)",
        ),
        (
            HEAD + SET + segment("[1, 2]"),
            "pack.toml: sets[0].segments[0].when: Input should be a valid dictionary",
        ),
        (
            HEAD + SET + segment("{ all = [3] }"),
            "pack.toml: sets[0].segments[0].when.all[0]: a rule must be a table",
        ),
        (
            HEAD + SET + segment('{ field = "order_count", op = "gte", value = "$min_orders" }'),
            "pack.toml: sets[0].segments[0].when.value: unknown parameter '$min_orders' (parameters here: "
            "none)",
        ),
        (
            HEAD
            + "[pack.params]\nmin_order = 2\n"
            + SET
            + segment('{ field = "order_count", op = "gte", value = "$min_orders" }'),
            "pack.toml: sets[0].segments[0].when.value: unknown parameter '$min_orders' (parameters here: "
            "min_order) (did you mean 'min_order'?)",
        ),
        (
            HEAD
            + '[pack.params]\nmin_orders = "two"\n'
            + SET
            + segment('{ field = "order_count", op = "gte", value = "$min_orders" }'),
            "pack.toml: sets[0].segments[0].when.value: field 'order_count' is a number; got 'two' (from "
            "parameter $min_orders, set in the pack's [pack.params])",
        ),
        (
            HEAD + "[pack.params]\nlimits = { a = 1 }\n" + SET + segment(COND),
            "pack.toml: pack.params: parameter",
        ),
        (
            HEAD + SET + segment(COND) + segment(COND),
            "pack.toml: sets[0].segments[1].key: duplicate segment key 'a' (also sets[0].segments[0])",
        ),
        (
            HEAD + SET + segment(COND) + segment(COND, key="b").replace('name = "B"', 'name = "a"'),
            "pack.toml: sets[0].segments[1].name: duplicate segment name 'a' (also sets[0].segments[0])",
        ),
        (
            HEAD + SET + segment(COND) + SET + segment(COND),
            "pack.toml: sets[1].key: duplicate set key 's' (also sets[0])",
        ),
        (
            HEAD + '[[sets]]\nkey = "s"\nmode = "independent"\nfield = "segsync_s"\n' + segment(COND),
            "pack.toml: sets[0].field: only exclusive sets write a field",
        ),
        (
            HEAD + '[[sets]]\nkey = "s"\nmode = "independent"\nallow_gaps = true\n' + segment(COND),
            "pack.toml: sets[0].allow_gaps: allow_gaps applies only to exclusive sets",
        ),
        (
            HEAD + SET + 'field = "segsync_rfm_score"\n' + segment(COND),
            "pack.toml: sets[0].field: 'segsync_rfm_score' is a field segsync manages itself",
        ),
        (HEAD + "[[sets]\n", "pack.toml: line 3, column 7: invalid TOML: "),
    ],
)
def test_bad_pack_is_one_line_naming_file_and_location(in_tmp, registry, text, message):
    with pytest.raises(ManifestError) as err:
        load_text(in_tmp, text, registry)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_params_resolve_inside_lists_and_from_overrides(in_tmp, registry):
    text = (
        HEAD
        + '[pack.params]\nlo = 2\nhi = 4\nnames = ["FR", "DE"]\n'
        + SET
        + segment(
            '{ all = [ { field = "order_count", op = "between", value = ["$lo", "$hi"] }, '
            '{ field = "country", op = "in", value = "$names" } ] }'
        )
    )
    pack = load_text(in_tmp, text, registry, hi=9)
    rule = pack.sets[0].segments[0].rule
    assert isinstance(rule, AllOf)
    between, within = rule.children
    assert isinstance(between, Condition)
    assert between.arg == (2, 9)
    assert isinstance(within, Condition)
    assert within.arg == ("FR", "DE")
    assert evaluate(rule, {"order_count": 9, "country": "DE"}, as_of=dt.date(2025, 1, 1))


def test_override_of_wrong_type_names_where_it_was_set(in_tmp, registry):
    text = (
        HEAD
        + "[pack.params]\nmin_orders = 2\n"
        + SET
        + segment('{ field = "order_count", op = "gte", value = "$min_orders" }')
    )
    with pytest.raises(ManifestError, match=r"set in segsync.toml \[segments.params\]\)$"):
        load_text(in_tmp, text, registry, min_orders="many")


def test_when_omitted_matches_everyone(in_tmp, registry):
    pack = load_text(in_tmp, HEAD + SET + '[[sets.segments]]\nkey = "all"\nname = "Everyone"\n', registry)
    assert evaluate(pack.sets[0].segments[0].rule, {}, as_of=dt.date(2025, 1, 1))


def test_exclusive_set_field_defaults_from_its_key(in_tmp, registry):
    pack = load_text(in_tmp, HEAD + SET + segment(COND), registry)
    assert pack.sets[0].field == "segsync_s_segment"
    assert pack.sets[0].label == "S"


def test_unknown_shipped_pack_suggests_the_closest(registry):
    with pytest.raises(
        ConfigError, match=r"no shipped segment pack named 'rfm-standart'.*did you mean 'rfm-standard'"
    ):
        load_pack("rfm-standart", root=Path("."), params={}, registry=registry)


def test_missing_pack_path(in_tmp, registry):
    with pytest.raises(ConfigError, match=r"segment pack 'packs/mine.toml': packs/mine.toml not found"):
        load_pack("packs/mine.toml", root=in_tmp, params={}, registry=registry)


# -- load_packs ------------------------------------------------------------------------------

CUSTOM = (
    '[[segments.custom]]\nkey = "b2b"\nmode = "independent"\n[[segments.custom.segments]]\nkey = "big"\n'
    'name = "Big accounts"\nwhen = { field = "company_size", op = "in", value = ["201-1000", "1000+"] }\n'
)


def config_in(folder: Path, text: str):
    path = folder / "segsync.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def test_load_packs_with_custom_sets_and_a_pack_of_ones_own(in_tmp, registry):
    (in_tmp / "packs").mkdir()
    (in_tmp / "packs" / "mine.toml").write_text(
        '[pack]\nname = "mine"\n[[sets]]\nkey = "plan"\nmode = "independent"\n'
        + segment('{ field = "plan", op = "eq", value = "pro" }', key="pro"),
        encoding="utf-8",
    )
    config = config_in(
        in_tmp,
        '[segments]\npacks = ["rfm-standard", "lifecycle", "packs/mine.toml"]\n'
        '[segments.params]\nvip_min_orders = 5\n[properties]\nplan = "string"\n' + CUSTOM,
    )
    packs = load_packs(config, registry)
    assert [p.name for p in packs] == ["rfm-standard", "lifecycle", "mine", "custom"]
    assert packs[1].params["vip_min_orders"] == 5
    assert packs[3].sets[0].segments[0].list_name == "segsync · Big accounts"
    assert packs[3].source == "segsync.toml"


def test_custom_sets_may_use_params_of_their_own(in_tmp, registry):
    text = CUSTOM.replace('value = ["201-1000", "1000+"]', 'value = "$big_sizes"')
    config = config_in(in_tmp, '[segments.params]\nbig_sizes = ["1000+"]\n' + text)
    packs = load_packs(config, registry)
    condition = packs[-1].sets[0].segments[0].rule
    assert isinstance(condition, Condition)
    assert condition.arg == ("1000+",)


def test_a_param_no_pack_declares_is_an_error(in_tmp, registry):
    config = config_in(in_tmp, '[segments]\npacks = ["lifecycle"]\n[segments.params]\nvip_min_order = 5\n')
    with pytest.raises(ManifestError) as err:
        load_packs(config, registry)
    assert str(err.value).startswith(
        "segsync.toml: segments.params.vip_min_order: no loaded pack declares this parameter (declared: "
        "dormant_days, new_customer_days, vip_min_average_order, vip_min_orders) (did you mean "
        "'vip_min_orders'?)"
    )


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        (
            '[[segments.custom]]\nkey = "rfm"\nmode = "independent"\n[[segments.custom.segments]]\nkey = '
            '"x"\n'
            'name = "X"\n',
            "segsync.toml: segments.custom[0]: set key 'rfm' is already used by "
            "manifests/rfm-standard.toml: sets[0]",
        ),
        (
            '[[segments.custom]]\nkey = "other"\nmode = "exclusive"\nfield = "segsync_rfm_segment"\n'
            '[[segments.custom.segments]]\nkey = "x"\nname = "X"\n',
            "segsync.toml: segments.custom[0]: field 'segsync_rfm_segment' is already written by",
        ),
        (
            '[[segments.custom]]\nkey = "other"\nmode = "independent"\n[[segments.custom.segments]]\n'
            'key = "x"\nname = "CHAMPIONS"\n',
            "segsync.toml: segments.custom[0].segments[0]: list name 'segsync · CHAMPIONS' is already used "
            "by "
            "manifests/rfm-standard.toml: sets[0].segments[0]",
        ),
    ],
)
def test_clashes_across_packs(in_tmp, registry, custom, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = parse_config(custom, ROOT / "segsync.toml")
    with pytest.raises(ManifestError) as err:
        load_packs(config, registry)
    assert str(err.value).startswith(message), str(err.value)


def test_custom_set_errors_point_into_segsync_toml(in_tmp, registry):
    text = CUSTOM.replace('op = "in"', 'op = "inn"')
    with pytest.raises(
        ManifestError, match=r"^segsync.toml: segments.custom\[0\].segments\[0\].when.op: unknown"
    ):
        load_packs(config_in(in_tmp, text), registry)


# -- platform manifests ----------------------------------------------------------------------

PLATFORM = '[platform]\nname = "acme"\ndisplay_name = "Acme CRM"\n'


def test_platform_manifest_loads(in_tmp):
    path = in_tmp / "manifest.toml"
    path.write_text(
        PLATFORM + '[[scopes]]\nname = "contacts.read"\nwhy = "pull contacts"\n'
        '[[limits]]\nname = "batch"\nvalue = 100\nsource = "docs"\n'
        '[[creates]]\nkind = "list"\nname = "segsync · <segment>"\n',
        encoding="utf-8",
    )
    manifest = load_platform_manifest(path)
    assert manifest.platform.name == "acme"
    assert manifest.scopes[0].required is True
    assert manifest.limits[0].value == 100


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[scopes]]\nname = "x"\n', "manifest.toml: scopes[0].why: required key is missing"),
        (
            '[[scopes]]\nname = "x"\nwhy = "y"\nrequird = false\n',
            "manifest.toml: scopes[0].requird: unknown key",
        ),
        (
            '[[limits]]\nname = "x"\nvalue = [1]\nsource = "d"\n',
            "manifest.toml: limits[0].value: a limit's value is a number or a short text",
        ),
        (
            '[[creates]]\nkind = ""\nname = "x"\n',
            "manifest.toml: creates[0].kind: String should have at least",
        ),
    ],
)
def test_bad_platform_manifest(in_tmp, extra, message):
    path = in_tmp / "manifest.toml"
    path.write_text(PLATFORM + extra, encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        load_platform_manifest(path)
    assert str(err.value).startswith(message), str(err.value)


def test_a_file_that_is_neither_kind(in_tmp, registry):
    path = in_tmp / "x.toml"
    path.write_text('title = "x"\n', encoding="utf-8")
    with pytest.raises(ManifestError, match="neither a segment pack"):
        validate_manifest_file(path, registry=registry)
