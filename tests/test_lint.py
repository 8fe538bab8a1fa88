"""The pack linter: gaps, shadowed segments, overlaps and contradictions, on representative states."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.core.lint import Finding, describe, lint
from segsync.core.rules import DEFAULT_PROPERTIES, bind
from segsync.core.segments import SegmentPack
from segsync.plugins.manager import build_registry, make_plugin_manager
from segsync.plugins.registry import Registry
from segsync.project.manifest import load_pack

AS_OF_FOR_RULES = dt.date(2000, 1, 1)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # messages name files relative to the working directory


def pack_from(tmp_path: Path, registry: Registry, sets: str) -> SegmentPack:
    path = tmp_path / "pack.toml"
    path.write_text('[pack]\nname = "t"\n' + sets, encoding="utf-8")
    return load_pack(path, root=tmp_path, params={}, registry=registry)


def grid_set(cells: dict[str, str], mode: str = "exclusive", extra: str = "") -> str:
    """A set over R and F; ``cells`` maps segment key → TOML rule."""
    text = f'[[sets]]\nkey = "grid"\nmode = "{mode}"\n{extra}'
    for key, when in cells.items():
        text += f'[[sets.segments]]\nkey = "{key}"\nname = "{key.title()}"\nwhen = {when}\n'
    return text


def rf(r: str, f: str) -> str:
    r_in = f'{{ field = "rfm_r", op = "in", value = {r} }}'
    f_in = f'{{ field = "rfm_f", op = "in", value = {f} }}'
    return f"{{ all = [ {r_in}, {f_in} ] }}"


NONE = '{ field = "has_purchased", op = "eq", value = false }'
IMPOSSIBLE = (
    '{ all = [ { field = "order_count", op = "gt", value = 5 }, '
    '{ field = "order_count", op = "lt", value = 3 } ] }'
)


def test_shipped_packs_lint_clean(registry):
    packs = [
        load_pack(n, root=Path("."), params={}, registry=registry) for n in ("rfm-standard", "lifecycle")
    ]
    assert lint(packs, registry, DEFAULT_PROPERTIES) == []


def test_standard_grid_puts_each_of_the_25_cells_in_exactly_one_segment(registry):
    pack = load_pack("rfm-standard", root=Path("."), params={}, registry=registry)
    tests = {s.key: bind(s.rule, AS_OF_FOR_RULES) for s in pack.sets[0].segments}
    for r, f in itertools.product(range(1, 6), repeat=2):
        state = {"rfm_r": r, "rfm_f": f, "has_purchased": True}
        matching = [k for k, test in tests.items() if test(state)]
        assert len(matching) == 1, (r, f, matching)
    no_purchase = {"rfm_r": None, "rfm_f": None, "has_purchased": False}
    assert [k for k, test in tests.items() if test(no_purchase)] == ["no_purchase"]


def test_a_gap_is_an_error_naming_an_uncovered_example(tmp_path, registry):
    cells = {
        "top": rf("[4, 5]", "[1, 2, 3, 4, 5]"),
        "mid": rf("[3]", "[1, 2, 3, 5]"),  # R=3 F=4 is nobody's
        "low": rf("[1, 2]", "[1, 2, 3, 4, 5]"),
        "none": NONE,
    }
    findings = lint([pack_from(tmp_path, registry, grid_set(cells))], registry, DEFAULT_PROPERTIES)
    assert findings == [
        Finding(
            "error",
            "pack.toml: sets[0]",
            "no segment matches R=3 F=4; add a segment that covers it, or set allow_gaps = true",
        )
    ]


def test_several_gaps_are_counted_in_one_finding(tmp_path, registry):
    findings = lint(
        [pack_from(tmp_path, registry, grid_set({"top": rf("[5]", "[5]")}))], registry, DEFAULT_PROPERTIES
    )
    (finding,) = findings
    assert finding.level == "error"
    assert finding.message.startswith(
        "no segment matches a contact without purchases (nor 24 other state(s), e.g. R=1 F=1)"
    )


def test_allow_gaps(tmp_path, registry):
    sets = grid_set({"top": rf("[5]", "[5]")}, extra="allow_gaps = true\n")
    assert lint([pack_from(tmp_path, registry, sets)], registry, DEFAULT_PROPERTIES) == []


def test_shadowed_segment_is_an_error_naming_the_winner(tmp_path, registry):
    cells = {
        "recent": '{ field = "rfm_r", op = "gte", value = 4 }',
        "champions": rf("[5]", "[5]"),  # every champion is already "recent"
        "rest": '{ field = "rfm_r", op = "lte", value = 3 }',
        "none": NONE,
    }
    findings = lint([pack_from(tmp_path, registry, grid_set(cells))], registry, DEFAULT_PROPERTIES)
    assert findings == [
        Finding(
            "error",
            "pack.toml: sets[0].segments[1]",
            "segment 'champions' never wins: earlier segment(s) 'recent' match every contact it matches "
            "(e.g. R=5 F=5); move it up or narrow them",
        )
    ]


def test_partial_overlap_is_a_warning(tmp_path, registry):
    cells = {
        "recent": '{ field = "rfm_r", op = "gte", value = 4 }',
        "frequent": '{ field = "rfm_f", op = "gte", value = 4 }',
        "rest": "{ all = [] }",
    }
    findings = lint([pack_from(tmp_path, registry, grid_set(cells))], registry, DEFAULT_PROPERTIES)
    assert [f.level for f in findings] == ["warning", "warning", "warning"]
    messages = {f.message for f in findings}
    assert (
        "segments 'recent' and 'frequent' overlap (e.g. R=4 F=4); 'recent' wins there, being first"
        in messages
    )
    assert {m.split(" overlap")[0] for m in messages} == {
        "segments 'recent' and 'frequent'",
        "segments 'recent' and 'rest'",
        "segments 'frequent' and 'rest'",
    }


@pytest.mark.parametrize("mode", ["exclusive", "independent"])
def test_contradiction_is_reported(tmp_path, registry, mode):
    cells = {
        "impossible": IMPOSSIBLE,
        "everyone": "{ all = [] }",
    }
    findings = lint([pack_from(tmp_path, registry, grid_set(cells, mode=mode))], registry, DEFAULT_PROPERTIES)
    assert findings == [
        Finding(
            "error",
            "pack.toml: sets[0].segments[0]",
            "segment 'impossible' can never match: its conditions contradict each other",
        )
    ]


def test_open_intervals_between_constants_are_found(tmp_path, registry):
    # Only values strictly between 150 and 151 satisfy this: the midpoint candidate finds them.
    cells = {
        "narrow": '{ all = [ { field = "average_order", op = "gt", value = 150 }, '
        '{ field = "average_order", op = "lt", value = 151 } ] }'
    }
    assert (
        lint(
            [pack_from(tmp_path, registry, grid_set(cells, mode="independent"))], registry, DEFAULT_PROPERTIES
        )
        == []
    )


def test_properties_and_dates(tmp_path, registry):
    properties = {**DEFAULT_PROPERTIES, "plan": "string"}
    path = tmp_path / "pack.toml"
    path.write_text(
        '[pack]\nname = "t"\n'
        + grid_set(
            {
                "pro": '{ field = "plan", op = "eq", value = "pro" }',
                "fresh": '{ field = "last_purchase", op = "within_last_days", value = 30 }',
                "stale": '{ all = [ { field = "last_purchase", op = "older_than_days", value = 30 }, '
                '{ field = "last_purchase", op = "within_last_days", value = 29 } ] }',
                "rest": '{ field = "has_purchased", op = "eq", value = true }',
            }
        ),
        encoding="utf-8",
    )
    pack = load_pack(path, root=tmp_path, params={}, registry=registry, properties=properties)
    findings = lint([pack], registry, properties)
    assert [(f.level, f.where) for f in findings if f.level == "error"] == [
        ("error", "pack.toml: sets[0].segments[2]"),  # stale: older than 30 yet within 29 days
        ("error", "pack.toml: sets[0]"),  # a prospect without a "pro" plan matches nothing
    ]
    assert findings[-1].message.startswith(
        "no segment matches a contact without purchases, plan=<another value>"
    )


def test_bins_other_than_five_break_the_standard_map(registry):
    pack = load_pack("rfm-standard", root=Path("."), params={}, registry=registry)
    findings = lint([pack], registry, DEFAULT_PROPERTIES, bins=4)
    assert {f.message.split(" can never")[0] for f in findings} == {
        "segment 'champions'",
        "segment 'new_customers'",
        "segment 'cant_lose_them'",
    }
    assert lint([pack], registry, DEFAULT_PROPERTIES, bins=6)[0].message.startswith(
        "no segment matches R=6 F=1"
    )


def test_rfm_score_and_monetary_enumerate_all_cells(tmp_path, registry):
    cells = {
        "perfect": '{ field = "rfm_score", op = "eq", value = "555" }',
        "big": '{ field = "rfm_m", op = "eq", value = 5 }',
    }
    findings = lint(
        [pack_from(tmp_path, registry, grid_set(cells, mode="independent"))], registry, DEFAULT_PROPERTIES
    )
    assert findings == []


def test_beyond_the_cap_a_sample_is_checked_and_never_match_is_a_warning(tmp_path, registry):
    cells = {
        "impossible": IMPOSSIBLE,
        "everyone": "{ all = [] }",
    }
    pack = pack_from(tmp_path, registry, grid_set(cells, mode="independent"))
    (finding,) = lint([pack], registry, DEFAULT_PROPERTIES, cap=3)
    assert finding.level == "warning"
    assert finding.message.endswith("(checked a sample of 3 of 6 states)")
    assert lint([pack], registry, DEFAULT_PROPERTIES, cap=3) == [finding]  # deterministic


@pytest.mark.parametrize(
    ("state", "text"),
    [
        ({"rfm_r": 3, "rfm_f": 4, "has_purchased": True}, "R=3 F=4"),
        ({"rfm_r": None, "has_purchased": False, "order_count": 0}, "a contact without purchases"),
        ({"has_purchased": True, "order_count": 2}, "a customer, order_count=2"),
        ({"country": None, "age": Decimal("30.50")}, "age=30.5, country empty"),
        ({}, "any contact"),
    ],
)
def test_describe(state, text):
    assert describe(state) == text


def test_finding_prints_on_one_line():
    assert str(Finding("error", "a.toml: sets[0]", "no segment matches R=1 F=1")) == (
        "error: a.toml: sets[0]: no segment matches R=1 F=1"
    )
