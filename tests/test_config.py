"""segsync.toml: defaults, the init template, and one-line errors naming file and key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.core.rules import DEFAULT_PROPERTIES
from segsync.errors import ConfigError, ManifestError
from segsync.project.config import (
    ProjectConfig,
    RfmSettings,
    default_config_text,
    effective_as_of,
    load_config,
    parse_config,
    secret_env_name,
)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp dir: messages name files relative to it (``segsync.toml: ...``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "segsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_table():
    config = ProjectConfig()
    assert config.rfm == RfmSettings()
    assert config.rfm.bins == 5
    assert config.rfm.cutoffs == "quantile"
    assert config.rfm.currency == "USD"
    assert config.segments.packs == ["rfm-standard"]
    assert config.project.platforms == []
    assert dict(config.properties) == dict(DEFAULT_PROPERTIES)


@pytest.mark.parametrize("platform", ["hubspot", "brevo", "pipedrive"])
def test_init_template_loads_cleanly(in_tmp, platform):
    text = default_config_text(platform)
    config = load_config(write(in_tmp, text))
    assert config.project.platforms == [platform]
    assert config.platform_settings(platform) == {}
    assert config.segments.packs == ["rfm-standard"]
    assert config.rfm == RfmSettings()
    assert secret_env_name(platform) in text


def test_init_template_names_the_secret_env_var_and_every_rfm_setting():
    text = default_config_text("hubspot")
    assert "SEGSYNC_HUBSPOT_TOKEN" in text
    assert "SEGSYNC_BREVO_API_KEY" in default_config_text("brevo")
    assert "# base_url = " in text
    for name, info in RfmSettings.model_fields.items():
        assert f"# {name} = " in text, name
        assert info.description, f"RfmSettings.{name} needs a description: docs are generated from it"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("bins", "4"),
        (
            "cutoffs",
            '"fixed"\nbins = 3\nrecency_days_cutoffs = [30, 90]\nfrequency_cutoffs = [2, 5]\n'
            "monetary_cutoffs = [100, 500]",
        ),
        ("monetary", '"average"'),
        ("frequency_window_days", "365"),
        ("as_of", "2025-01-31"),
        ("currency", '"EUR"'),
        ("refunds", '"ignore"'),
        ("zero_amounts", '"ignore"'),
        ("write_recency_days", "false"),
    ],
)
def test_uncommenting_a_template_line_takes_effect(in_tmp, name, value):
    text = default_config_text("hubspot").replace(f"# {name} = ", f"{name} = {value}\n# was: ", 1)
    config = load_config(write(in_tmp, text))
    assert getattr(config.rfm, name) != getattr(RfmSettings(), name)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", dt.timedelta(days=7)),
        ('full_every = "12h"', dt.timedelta(hours=12)),
        ('full_every = "30 m"', dt.timedelta(minutes=30)),
        ('full_every = "2D"', dt.timedelta(days=2)),
        ('full_every = "off"', None),
        ('full_every = "0d"', None),
    ],
)
def test_full_every_reads_durations(tmp_path, text, want):
    assert load_config(write(tmp_path, f"[project]\n{text}\n")).project.full_every == want


def test_a_full_every_that_is_no_duration_says_how_to_write_one(in_tmp):
    with pytest.raises(ConfigError, match=r'project.full_every: .*write e.g. "7d", "12h", "30m" or "off"'):
        load_config(write(in_tmp, '[project]\nfull_every = "weekly"\n'))


def test_paths_are_relative_to_the_config_file(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    config = load_config(write(folder, '[project]\nstate = "data/state.db"\n'))
    assert config.root == folder
    assert config.state_path == folder / "data" / "state.db"
    assert config.state_path.is_absolute()


def test_platforms_default_to_every_platform_table(tmp_path):
    config = load_config(write(tmp_path, '[platforms.hubspot]\nbase_url = "http://x"\n[platforms.brevo]\n'))
    assert config.project.platforms == ["hubspot", "brevo"]
    assert config.platform_settings("hubspot") == {"base_url": "http://x"}
    settings = config.platform_settings("hubspot")
    settings["base_url"] = "changed"
    assert config.platform_settings("hubspot") == {"base_url": "http://x"}
    assert config.platform_settings("absent") == {}


def test_explicit_platform_list_wins(tmp_path):
    text = '[project]\nplatforms = ["brevo"]\n[platforms.hubspot]\n[platforms.brevo]\n'
    assert load_config(write(tmp_path, text)).project.platforms == ["brevo"]


def test_properties_extend_the_defaults(tmp_path):
    config = load_config(write(tmp_path, '[properties]\nplan = "string"\nage = "string"\n'))
    assert config.properties["plan"] == "string"
    assert config.properties["age"] == "string"  # a default may be retyped
    assert config.properties["createdate"] == "date"


def test_values_are_normalised(tmp_path):
    text = (
        '[rfm]\ncurrency = "eur"\ncutoffs = "fixed"\nbins = 3\nrecency_days_cutoffs = [30, 90]\n'
        "frequency_cutoffs = [2, 5]\nmonetary_cutoffs = [49.99, 100]\n"
    )
    rfm = load_config(write(tmp_path, text)).rfm
    assert rfm.currency == "EUR"
    assert rfm.monetary_cutoffs == [Decimal("49.99"), Decimal("100")]


def test_effective_as_of():
    run = dt.date(2025, 6, 1)
    assert effective_as_of(ProjectConfig(), run) == run
    fixed = ProjectConfig(rfm=RfmSettings(as_of=dt.date(2024, 12, 31)))
    assert effective_as_of(fixed, run) == dt.date(2024, 12, 31)


CUTOFFS = 'cutoffs = "fixed"\nrecency_days_cutoffs = [30, 90, 180, 365]\nfrequency_cutoffs = [2, 3, 5, 8]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rfm]\nbins = 1\n", "segsync.toml: rfm.bins: Input should be greater than or equal to 2"),
        ("[rfm]\nbins = 11\n", "segsync.toml: rfm.bins: Input should be less than or equal to 10"),
        ('[rfm]\nbins = "five"\n', "segsync.toml: rfm.bins: Input should be a valid integer"),
        (
            "[rfm]\nbinz = 4\n",
            "segsync.toml: rfm.binz: unknown key (allowed here: as_of, bins, currency, cutoffs, "
            "frequency_cutoffs, frequency_window_days, monetary, monetary_cutoffs, recency_days_cutoffs, "
            "refunds, write_recency_days, zero_amounts) (did you mean 'bins'?)",
        ),
        ("[rmf]\nbins = 4\n", "segsync.toml: rmf: unknown key"),
        ("path = 'elsewhere.toml'\n", "segsync.toml: path: unknown key"),
        ('[rfm]\nmonetary = "sum"\n', "segsync.toml: rfm.monetary: Input should be 'total' or 'average'"),
        (
            '[rfm]\ncutoffs = "fixed"\n',
            'segsync.toml: rfm.recency_days_cutoffs: required when cutoffs = "fixed"',
        ),
        (
            f"[rfm]\n{CUTOFFS}",
            'segsync.toml: rfm.monetary_cutoffs: required when cutoffs = "fixed": 4 ascending values',
        ),
        (
            "[rfm]\nrecency_days_cutoffs = [30, 90, 180]\n",
            "segsync.toml: rfm.recency_days_cutoffs: needs exactly bins - 1 = 4 values, got 3",
        ),
        (
            "[rfm]\nfrequency_cutoffs = [2, 3, 3, 8]\n",
            "segsync.toml: rfm.frequency_cutoffs: values must be strictly ascending",
        ),
        (
            "[rfm]\nmonetary_cutoffs = [-1, 3, 4, 8]\n",
            "segsync.toml: rfm.monetary_cutoffs: values must not be negative",
        ),
        ('[rfm]\ncurrency = "EURO"\n', "segsync.toml: rfm.currency: String should match pattern"),
        (
            "[rfm]\nfrequency_window_days = -1\n",
            "segsync.toml: rfm.frequency_window_days: Input should be greater",
        ),
        ('[rfm]\nas_of = "yesterday"\n', "segsync.toml: rfm.as_of: Input should be a valid date"),
        (
            '[properties]\nplan = "text"\n',
            "segsync.toml: properties.plan: Input should be 'string', 'number' or 'date'",
        ),
        (
            '[properties]\nPlan = "string"\n',
            "segsync.toml: properties.Plan: invalid name: String should match pattern",
        ),
        (
            "[retry]\nmax_attempts = 0\n",
            "segsync.toml: retry.max_attempts: Input should be greater than or equal to 1",
        ),
        (
            '[project]\nplatforms = "hubspot"\n',
            "segsync.toml: project.platforms: Input should be a valid list",
        ),
        (
            '[segments]\npacks = "rfm-standard"\n',
            "segsync.toml: segments.packs: Input should be a valid list",
        ),
        ("[platforms]\nhubspot = 3\n", "segsync.toml: platforms.hubspot: Input should be a valid dictionary"),
        (
            '[[segments.custom]]\nkey = "b2b"\nmode = "independent"\n[[segments.custom.segments]]\nkey = '
            '"Big"\n'
            'name = "Big"\n',
            "segsync.toml: segments.custom[0].segments[0].key: String should match pattern",
        ),
        (
            '[[segments.custom]]\nkey = "b2b"\nmode = "independent"\n[[segments.custom.segments]]\nkey = '
            '"big"\n'
            'name = "Big"\nwehn = {}\n',
            "segsync.toml: segments.custom[0].segments[0].wehn: unknown key (allowed here: description, "
            "intent, "
            "key, list, name, when) (did you mean 'when'?)",
        ),
        (
            '[[segments.custom]]\nkey = "b2b"\n[[segments.custom.segments]]\nkey = "big"\nname = "Big"\n',
            "segsync.toml: segments.custom[0].mode: required key is missing",
        ),
        ("[rfm\nbins = 5\n", "segsync.toml: line 1, column 5: invalid TOML: "),
        ("[rfm]\nbins = 5\nbins = 6\n", "segsync.toml: line 3, column 9: invalid TOML: "),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(in_tmp, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(in_tmp, text))
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)
    assert "Traceback" not in str(err.value)


def test_several_problems_are_counted_on_the_one_line(in_tmp):
    with pytest.raises(ManifestError) as err:
        load_config(write(in_tmp, '[rfm]\nbins = 1\nmonetary = "sum"\n'))
    assert str(err.value).endswith("(+1 more problem(s) in this file)")


def test_missing_file_is_a_config_error(in_tmp):
    with pytest.raises(ConfigError, match=r"^nope\.toml: file not found$"):
        load_config(in_tmp / "nope.toml")


def test_parse_config_needs_no_file(tmp_path):
    config = parse_config("[rfm]\nbins = 4\n", tmp_path / "segsync.toml")
    assert config.rfm.bins == 4
    assert config.root == tmp_path


def test_init_template_shows_a_plugins_own_settings(in_tmp):
    from typing import Literal

    from pydantic import Field

    from segsync.sync.platform import PlatformSettings

    class AcmeSettings(PlatformSettings):
        mode: Literal["fast", "safe"] = Field("safe", description="how careful to be")
        stages: tuple[str, ...] = Field(("Won",), description="stages that count")
        names: dict[str, str] = Field(default_factory=lambda: {"jobtitle": "JOB"}, description="renames")

    text = default_config_text("acme", secret_env="ACME_KEY", settings=AcmeSettings)
    assert '# mode = "safe"' in text
    assert '# stages = ["Won"]' in text
    assert '# names = {"jobtitle" = "JOB"}' in text
    uncommented = text.replace("# names = ", "names = ").replace("# stages = ", "stages = ")
    assert load_config(write(in_tmp, uncommented)).platform_settings("acme")["names"] == {"jobtitle": "JOB"}
    assert "# how careful to be" in text
    assert "export ACME_KEY=..." in text
    assert load_config(write(in_tmp, text)).project.platforms == ["acme"]
