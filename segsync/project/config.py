"""``segsync.toml``: the project configuration, validated with pydantic (unknown keys are errors).

::

    [project]            state store path, platforms synced by default
    [state]              url: a PostgreSQL state store instead of the file
    [rfm]                every RFM scoring choice, explicit (RfmSettings)
    [segments]           packs to load, parameter overrides, [[segments.custom]] sets
    [properties]         extra contact properties rules may use: name = "string"|"number"|"date"
    [retry]              how CRM calls are retried (segsync.sync.runner.RetryPolicy)
    [platforms.<name>]   settings of one platform plugin, validated by that plugin's Settings

Pure: reading the file is the only IO; no environment variables (secrets come from the
environment, read by the CLI, never from this file). Errors are one line naming the file and
the key: ``segsync.toml: rfm.bins: Input should be greater than or equal to 2``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from segsync.core.rules import DEFAULT_PROPERTIES, PropertyType
from segsync.core.settings import RfmSettings as RfmSettings  # where [rfm] is defined
from segsync.project.manifest import SetModel, display_path, parse_toml, read_text, validation_error
from segsync.sync.platform import PlatformSettings
from segsync.sync.runner import RetryPolicy

CONFIG_NAME = "segsync.toml"
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSection(_Strict):
    state: Path = Field(
        Path(".segsync/state.db"),
        description="SQLite state store, relative to segsync.toml; "
        "deleting it costs a full resync, never wrong data",
    )
    platforms: list[Name] = Field(
        default_factory=list,
        description="platforms synced when no --platform is given; default: every [platforms.X] table",
    )
    full_every: dt.timedelta | None = Field(
        dt.timedelta(days=7),
        description='pull every purchase and contact again this often ("7d", "12h", "off"): it repairs '
        "what an incremental pull cannot see (deals merged, contacts associated without the deal "
        "changing, hand edits of segsync's own fields and lists)",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=16,
        description="write batches in flight at once, under the account's one rate limit, where "
        "the platform allows it (HubSpot; Brevo's writes go one at a time); 1 sends one at a time",
    )

    @field_validator("full_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        if text in ("off", "never", "0", ""):
            return None
        match = re.fullmatch(r"(\d+)\s*(d|h|m)", text)
        if match is None:
            raise ValueError(f'{value!r} is not a duration: write e.g. "7d", "12h", "30m" or "off"')
        n, unit = int(match[1]), match[2]
        if n == 0:
            return None
        return (
            dt.timedelta(days=n)
            if unit == "d"
            else dt.timedelta(hours=n)
            if unit == "h"
            else dt.timedelta(minutes=n)
        )


class StateSection(_Strict):
    url: str | None = Field(
        None,
        description='a PostgreSQL state store instead of the SQLite file: "postgresql://user@host:5432/db" '
        "(the password from SEGSYNC_STATE_PASSWORD, never here); for containers whose files do not last",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise ValueError(
                'write a PostgreSQL URL with a database, e.g. "postgresql://segsync@db:5432/segsync"'
            )
        if parts.password:
            raise ValueError("holds a password: remove it and set SEGSYNC_STATE_PASSWORD instead")
        return value


class SegmentsSection(_Strict):
    packs: list[str] = Field(
        default_factory=lambda: ["rfm-standard"],
        description='shipped pack names ("rfm-standard", "lifecycle") '
        "or .toml paths relative to segsync.toml",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="overrides of the packs' [pack.params]")
    custom: list[SetModel] = Field(
        default_factory=list, description="extra sets, same schema as a pack's [[sets]]"
    )


class ConfigFile(_Strict):
    """The schema of segsync.toml."""

    project: ProjectSection = Field(default_factory=ProjectSection)
    state: StateSection = Field(default_factory=StateSection)
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    segments: SegmentsSection = Field(default_factory=SegmentsSection)
    properties: dict[Name, PropertyType] = Field(default_factory=dict, validate_default=True)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    platforms: dict[Name, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_platforms(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("platforms"), dict):
            project = data.get("project", {})
            if isinstance(project, dict) and "platforms" not in project:
                data = {**data, "project": {**project, "platforms": list(data["platforms"])}}
        return data

    @field_validator("properties")
    @classmethod
    def _with_defaults(cls, value: dict[str, PropertyType]) -> dict[str, PropertyType]:
        return {**DEFAULT_PROPERTIES, **value}


class ProjectConfig(ConfigFile):
    """A loaded segsync.toml plus where it lives. Build with :func:`load_config`; tests may
    construct one directly (every section has defaults)."""

    path: Path = Field(Path(CONFIG_NAME), exclude=True)

    @property
    def root(self) -> Path:
        """The folder holding segsync.toml; relative paths in it are relative to this."""
        return self.path.parent

    @property
    def state_path(self) -> Path:
        return (self.root / self.project.state).absolute()

    @property
    def state_target(self) -> Path | str:
        """Where the state store is: ``[state] url`` (PostgreSQL), else the SQLite file."""
        return self.state.url or self.state_path

    def platform_settings(self, name: str) -> dict[str, Any]:
        """The raw ``[platforms.<name>]`` table (empty if absent), for the plugin's Settings."""
        return dict(self.platforms.get(name, {}))


def parse_config(text: str, path: Path) -> ProjectConfig:
    """Validate segsync.toml content; ``path`` names it in errors and anchors relative paths."""
    source = display_path(path)
    data = parse_toml(text, source)
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as err:
        raise validation_error(source, err, ConfigFile) from None
    return ProjectConfig(
        path=path.absolute(), **{name: getattr(parsed, name) for name in ConfigFile.model_fields}
    )


def load_config(path: Path) -> ProjectConfig:
    return parse_config(read_text(path), path)


# -- segsync init ----------------------------------------------------------------------------


def secret_env_name(platform: str) -> str:
    """The environment variable holding a platform's credential, by segsync's convention."""
    return "SEGSYNC_BREVO_API_KEY" if platform == "brevo" else f"SEGSYNC_{platform.upper()}_TOKEN"


def _toml_value(value: Any) -> str:
    """A default as TOML; values TOML cannot spell simply (models, objects) show as "..."."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):  # durations as full_every reads them
        minutes = int(value.total_seconds() // 60)
        for unit, size in (("d", 1440), ("h", 60)):
            if minutes % size == 0:
                return json.dumps(f"{minutes // size}{unit}")
        return json.dumps(f"{minutes}m")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    return '"..."'


def _commented_settings(model: type[BaseModel], *, skip: tuple[str, ...] = ()) -> list[str]:
    """``# key = default`` lines with each field's description, from the model itself."""
    lines: list[str] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        default = info.get_default(call_default_factory=True)
        if default is not None:
            shown, note = _toml_value(default), ""
        elif info.examples:
            shown, note = _toml_value(info.examples[0]), "   (not set by default; an example)"
        else:
            shown, note = '"..."', "   (not set by default)"
        for text in textwrap.wrap(info.description or "", width=96):
            lines.append(f"# {text}")
        lines.append(f"# {name} = {shown}{note}")
        lines.append("")
    return lines


def default_config_text(
    platform: str, *, secret_env: str | None = None, settings: type[PlatformSettings] | None = None
) -> str:
    """The commented segsync.toml ``segsync init --platform <platform>`` writes.

    ``secret_env`` and ``settings`` come from the platform class when the caller has it (its
    ``secret_env`` and ``Settings``), so every setting of the plugin is shown with its default.
    """
    env = secret_env or secret_env_name(platform)
    lines = [
        "# segsync configuration. Every setting is shown with its default; uncomment to change.",
        "# `segsync check` validates this file; `segsync plan` shows what a sync would change.",
        "",
        "[project]",
        *_commented_settings(ProjectSection, skip=("platforms",)),
        f"platforms = [{json.dumps(platform)}]",
        "",
        f"[platforms.{platform}]",
        f"# The credential is read from the environment variable {env}, never from this file:",
        f"#   export {env}=...",
        *_commented_settings(settings or PlatformSettings),
        "[rfm]",
        "# How RFM scores are computed. Equal values always get equal scores; contacts without",
        "# purchases get no scores (the no-purchase state), not a score of 1.",
        "",
        *_commented_settings(RfmSettings),
        "[segments]",
        '# Shipped packs: "rfm-standard" (the 10-segment R x F map, one field + one list per segment)',
        '# and "lifecycle" (VIP, new customers, dormant, one-time buyers, high-value at risk lists).',
        'packs = ["rfm-standard"]',
        "",
        "# [segments.params]                 # override pack parameters, e.g. with lifecycle:",
        "# vip_min_average_order = 150",
        "# vip_min_orders = 3",
        "",
        "# [[segments.custom]]               # your own sets, same schema as a pack's [[sets]]",
        '# key = "b2b"',
        '# mode = "independent"',
        "# [[segments.custom.segments]]",
        '# key = "big_accounts"',
        '# name = "Big accounts"',
        '# when = { field = "company_size", op = "in", value = ["201-1000", "1000+"] }',
        "",
        "# [properties]                      # contact properties rules may use, besides the defaults:",
        "# " + ", ".join(DEFAULT_PROPERTIES),
        '# plan = "string"                   # types: "string", "number", "date"',
        "",
        "# [retry]                           # how each CRM call is retried",
        *(line for line in _commented_settings(RetryPolicy) if line),
        "",
    ]
    return "\n".join(lines)


def effective_as_of(config: ProjectConfig | None, run_date: dt.date) -> dt.date:
    """The reference date of a run: ``[rfm] as_of`` when set, else the run date."""
    return config.rfm.as_of if config is not None and config.rfm.as_of else run_date


__all__ = [
    "CONFIG_NAME",
    "ConfigFile",
    "ProjectConfig",
    "ProjectSection",
    "RfmSettings",
    "SegmentsSection",
    "default_config_text",
    "effective_as_of",
    "load_config",
    "parse_config",
    "secret_env_name",
]
