"""Manifests: segment packs and platform manifests, read from TOML and fully validated.

A **segment pack** declares segment sets (see ``docs/configuration.md`` and the shipped packs in
``manifests/``)::

    [pack]
    name = "lifecycle"
    [pack.params]
    vip_min_average_order = 150
    [[sets]]
    key = "lifecycle"
    mode = "independent"          # or "exclusive": priority order, first match wins
    [[sets.segments]]
    key = "vip"
    name = "VIP"
    when = { all = [ { field = "average_order", op = "gt", value = "$vip_min_average_order" } ] }

A **platform manifest** documents what a platform plugin needs and creates (scopes, limits).

Every problem is a :class:`~segsync.errors.ManifestError` whose one-line message names the
file and the location inside it (``lifecycle.toml: sets[0].segments[2].when.all[1].value``).
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from segsync.core.rules import (
    ALWAYS,
    DEFAULT_PROPERTIES,
    PropertyType,
    RuleContext,
    did_you_mean,
    parse_rule,
)
from segsync.core.segments import (
    RESERVED_FIELDS,
    Segment,
    SegmentPack,
    SegmentSet,
)
from segsync.errors import ConfigError, ManifestError
from segsync.plugins.registry import Registry

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "manifests"  # segsync/manifests, in the wheel
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
FieldKey = Annotated[str, StringConstraints(pattern=r"^segsync_[a-z0-9_]+$", max_length=60)]


# -- error formatting ------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_loc(loc: Sequence[int | str]) -> str:
    """``("sets", 0, "segments", 2, "key")`` → ``sets[0].segments[2].key``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(model: Any, loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model class found by walking ``loc`` from ``model``, for key suggestions."""
    current = model
    for part in loc:
        while get_origin(current) in (typing.Union, types.UnionType, Annotated):
            options = [a for a in get_args(current) if a is not type(None)]
            current = options[0] if options else None
        if isinstance(current, type) and issubclass(current, BaseModel):
            names = {(f.alias or n): f for n, f in current.model_fields.items()}
            if not isinstance(part, str) or part not in names:
                return None
            current = names[part].annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    while get_origin(current) in (typing.Union, types.UnionType):
        current = next((a for a in get_args(current) if a is not type(None)), None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validation_error(
    source: str, err: ValidationError, model: type[BaseModel], prefix: Sequence[int | str] = ()
) -> ManifestError:
    """A pydantic ``ValidationError`` as a one-line :class:`ManifestError` at the first problem.

    ``prefix`` is prepended to locations, for models validated inside a bigger file
    (``segments.custom`` in segsync.toml).
    """
    errors = err.errors(include_url=False)
    # A misspelt key also makes the right one "missing": report the misspelling, with its fix.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    bad_name = bool(loc) and loc[-1] == "[key]"  # pydantic's marker for an invalid dict key
    if bad_name:
        loc = loc[:-1]
    where = f"{source}: {format_loc((*prefix, *loc))}" if (prefix or loc) else source
    kind = first["type"]
    hint = ""
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
        problem = "unknown key"
        if allowed:
            problem += f" (allowed here: {', '.join(allowed)})"
        hint = did_you_mean(str(loc[-1]), allowed)
    elif kind == "missing":
        problem = "required key is missing"
    else:
        problem = str(first["msg"]).removeprefix("Value error, ")
        if bad_name:
            problem = f"invalid name: {problem}"
    if len(errors) > 1:
        more = f"+{len(errors) - 1} more problem(s) in this file"
        hint = f"{hint}; {more}" if hint else more
    return ManifestError(where, problem, hint)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{display_path(path)}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display_path(path)}: cannot be read ({type(exc).__name__})") from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors name the line and column."""
    return parse_toml(read_text(path), display_path(path))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = source
        if "(at line " in message:
            message, _, pos = message.rpartition(" (at ")
            where = f"{source}: {pos.rstrip(')')}"
        raise ManifestError(where, f"invalid TOML: {message}") from None


# -- segment pack schema ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SegmentModel(_Strict):
    key: Key = Field(description="identifier: lower snake case; the enumeration option value")
    name: str = Field(
        min_length=1, max_length=100, description='display name; the list is "segsync · <name>"'
    )
    description: str = Field("", description="index card: what this segment is")
    intent: str = Field("", description="index card: what to do with these contacts")
    make_list: bool | None = Field(None, alias="list", description="keep a list; default: the set's lists")
    when: dict[str, Any] | None = Field(None, description="the rule; omitted: every contact matches")


class SetModel(_Strict):
    key: Key = Field(description="identifier of the set")
    label: str = Field("", max_length=100, description="display label of the set (and of its field)")
    description: str = ""
    mode: Literal["exclusive", "independent"] = Field(
        description="exclusive: priority order, first match wins, one field; independent: one list each"
    )
    field: FieldKey | None = Field(None, description="exclusive only: the managed enumeration field")
    lists: bool = Field(True, description="one list per segment (a segment may say list = false)")
    allow_gaps: bool | None = Field(None, description="exclusive only: tolerate contacts matching nothing")
    segments: list[SegmentModel] = Field(min_length=1)


class PackInfo(_Strict):
    name: str = Field(min_length=1, max_length=60)
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _no_tables(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, v in value.items():
            if not name.isidentifier():
                raise ValueError(f"parameter name {name!r} must be an identifier")
            if isinstance(v, dict):
                raise ValueError(f"parameter {name!r} must be a value or a list, not a table")
        return value


class PackFile(_Strict):
    pack: PackInfo
    sets: list[SetModel] = Field(min_length=1)


# -- compiled packs --------------------------------------------------------------------------


def available_packs() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml") if "pack" in read_toml(p))


def resolve_pack(name_or_path: str, root: Path) -> Path:
    """A shipped pack name (``rfm-standard``) or a path relative to ``root``."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path:
        path = root / name_or_path
        if not path.is_file():
            raise ConfigError(f"segment pack {name_or_path!r}: {display_path(path)} not found")
        return path
    path = SHIPPED_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        hint = did_you_mean(name_or_path, available_packs())
        raise ConfigError(
            f"no shipped segment pack named {name_or_path!r} (shipped: {', '.join(available_packs())})"
            + (f"; {hint}" if hint else "")
            + "; a pack of your own is given as a path ending in .toml"
        )
    return path


def load_pack(
    name_or_path: str | Path,
    *,
    root: Path,
    params: Mapping[str, Any],
    registry: Registry,
    properties: Mapping[str, PropertyType] = DEFAULT_PROPERTIES,
    params_source: str = "segsync.toml [segments.params]",
) -> SegmentPack:
    """Load and validate one pack. ``params`` overrides the pack's declared parameters (others
    are ignored here; :func:`load_packs` reports parameters no pack declares)."""
    path = name_or_path if isinstance(name_or_path, Path) else resolve_pack(name_or_path, root)
    source = display_path(path)
    data = read_toml(path)
    try:
        parsed = PackFile.model_validate(data)
    except ValidationError as err:
        raise validation_error(source, err, PackFile) from None
    merged = dict(parsed.pack.params)
    origin = {}
    for key, value in params.items():
        if key in merged:
            merged[key] = value
            origin[key] = params_source
    ctx = RuleContext(registry, properties, source, merged, origin)
    sets = compile_sets(parsed.sets, ctx, ("sets",))
    return SegmentPack(parsed.pack.name, source, sets, parsed.pack.description, merged)


def compile_sets(
    models: Sequence[SetModel], ctx: RuleContext, prefix: tuple[str, ...]
) -> tuple[SegmentSet, ...]:
    """Turn validated set models into :class:`SegmentSet`s, checking what pydantic cannot."""
    out: list[SegmentSet] = []
    seen_sets: dict[str, int] = {}
    for i, model in enumerate(models):
        loc = format_loc((*prefix, i))
        if model.key in seen_sets:
            raise ctx.fail(
                f"{loc}.key",
                f"duplicate set key {model.key!r} (also {format_loc((*prefix, seen_sets[model.key]))})",
            )
        seen_sets[model.key] = i
        exclusive = model.mode == "exclusive"
        if not exclusive and model.field is not None:
            raise ctx.fail(f"{loc}.field", "only exclusive sets write a field; independent sets keep lists")
        if not exclusive and model.allow_gaps is not None:
            raise ctx.fail(f"{loc}.allow_gaps", "allow_gaps applies only to exclusive sets")
        set_field = (model.field or f"segsync_{model.key}_segment") if exclusive else None
        if set_field in RESERVED_FIELDS:
            raise ctx.fail(
                f"{loc}.field", f"{set_field!r} is a field segsync manages itself; pick another name"
            )
        segments: list[Segment] = []
        seen: dict[str, int] = {}
        names: dict[str, int] = {}
        for j, seg in enumerate(model.segments):
            sloc = f"{loc}.segments[{j}]"
            if seg.key in seen:
                other = f"{loc}.segments[{seen[seg.key]}]"
                raise ctx.fail(f"{sloc}.key", f"duplicate segment key {seg.key!r} (also {other})")
            seen[seg.key] = j
            # Names become option labels and list names, which CRMs compare loosely.
            if seg.name.casefold() in names:
                other = f"{loc}.segments[{names[seg.name.casefold()]}]"
                raise ctx.fail(f"{sloc}.name", f"duplicate segment name {seg.name!r} (also {other})")
            names[seg.name.casefold()] = j
            rule = ALWAYS if seg.when is None else parse_rule(seg.when, ctx, f"{sloc}.when")
            keep_list = model.lists if seg.make_list is None else seg.make_list
            where = f"{ctx.source}: {sloc}"
            segments.append(Segment(seg.key, seg.name, seg.description, seg.intent, keep_list, rule, where))
        out.append(
            SegmentSet(
                key=model.key,
                label=model.label or model.key.replace("_", " ").capitalize(),
                mode=model.mode,
                segments=tuple(segments),
                field=set_field,
                allow_gaps=bool(model.allow_gaps),
                description=model.description,
                where=f"{ctx.source}: {loc}",
            )
        )
    return tuple(out)


# -- platform manifests ----------------------------------------------------------------------


class PlatformInfo(_Strict):
    name: Key
    display_name: str = Field(min_length=1)
    docs: str = ""


class Scope(_Strict):
    name: str = Field(min_length=1)
    required: bool = True
    why: str = Field(min_length=1, description="what segsync uses the scope for")


class Limit(_Strict):
    name: str = Field(min_length=1)
    value: Any
    source: str = Field(min_length=1, description="where the number comes from (doc page, spec)")

    @field_validator("value")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("a limit's value is a number or a short text")
        return value


class Creates(_Strict):
    kind: str = Field(min_length=1, description="property, property group, list, folder, attribute…")
    name: str = Field(min_length=1)
    description: str = ""


class PlatformManifest(_Strict):
    """What a platform plugin needs (scopes), obeys (limits) and creates in the CRM."""

    platform: PlatformInfo
    scopes: list[Scope] = Field(default_factory=list)
    limits: list[Limit] = Field(default_factory=list)
    creates: list[Creates] = Field(default_factory=list)


def load_platform_manifest(path: Path) -> PlatformManifest:
    data = read_toml(path)
    try:
        return PlatformManifest.model_validate(data)
    except ValidationError as err:
        raise validation_error(display_path(path), err, PlatformManifest) from None


def validate_manifest_file(path: Path, *, registry: Registry) -> SegmentPack | PlatformManifest:
    """Validate any manifest file, telling packs (``[pack]``) from platform manifests (``[platform]``)."""
    data = read_toml(path)
    if "platform" in data:
        return load_platform_manifest(path)
    if "pack" in data:
        return load_pack(path, root=path.parent, params={}, registry=registry)
    raise ManifestError(
        display_path(path), "neither a segment pack ([pack]) nor a platform manifest ([platform])"
    )
