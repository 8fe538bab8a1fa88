"""Segment rules: parsed from manifests with exact error locations, evaluated purely.

A rule is a tree of ``all`` / ``any`` / ``not`` nodes over conditions ``{field, op, value}``.
Parsing checks everything that can be checked before any data is seen: the field exists (a
registered feature or a declared contact property), the operator exists and applies to the
field's type, the value has the shape the operator takes and the field's type, and every
``"$param"`` reference resolves. Errors are :class:`~segsync.errors.ManifestError` naming the
file and the path inside it (``lifecycle.toml: sets[0].segments[2].when.all[1].value``).

Evaluation semantics, the same for every operator:

* ``None`` (no value) satisfies nothing, except operators whose argument kind is ``"none"``
  (presence tests such as ``exists``), which are asked about it.
* :data:`INVALID` (a CRM string that could not be read as the property's declared type)
  satisfies no condition, so a garbled value never lands a contact in a segment through a
  condition; ``not`` is plain negation, so ``not (age gt 30)`` does match it.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from segsync.core.catalog import Catalog, FeatureType, OperatorDef, OperatorFn, VectorOperatorFn
from segsync.errors import ManifestError

PropertyType = Literal["string", "number", "date"]

#: Contact properties every platform pulls and every rule may use; ``[properties]`` adds more.
DEFAULT_PROPERTIES: Mapping[str, PropertyType] = {
    "email": "string",
    "firstname": "string",
    "lastname": "string",
    "country": "string",
    "city": "string",
    "age": "number",
    "jobtitle": "string",
    "company_size": "string",
    "createdate": "date",
}
Values = Mapping[str, Any]
Predicate = Callable[[Values], bool]


class _Invalid:
    """A value that could not be read as its declared type. Satisfies no condition."""

    _instance: _Invalid | None = None

    def __new__(cls) -> _Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    arg: Any
    test: OperatorFn = dc_field(compare=False, repr=False)
    #: True for operators of argument kind "none": they are asked about missing values too.
    sees_none: bool = False
    where: str = dc_field(default="", compare=False)
    #: the operator's columnar form, if it has one (see :mod:`segsync.core.columns`)
    vector: VectorOperatorFn | None = dc_field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AllOf:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class NotOf:
    child: Rule


Rule = Condition | AllOf | AnyOf | NotOf
ALWAYS: Rule = AllOf(())


def iter_conditions(rule: Rule) -> Iterator[Condition]:
    if isinstance(rule, Condition):
        yield rule
    elif isinstance(rule, NotOf):
        yield from iter_conditions(rule.child)
    else:
        for child in rule.children:
            yield from iter_conditions(child)


def rule_fields(rule: Rule) -> frozenset[str]:
    return frozenset(c.field for c in iter_conditions(rule))


def bind(rule: Rule, as_of: dt.date) -> Predicate:
    """Compile a rule into a predicate over a field-name → value mapping, for one reference date.

    Compiling once per run into nested closures keeps evaluation at a few hundred nanoseconds
    per condition, which matters at hundreds of thousands of contacts × dozens of segments.
    """
    if isinstance(rule, Condition):
        name, arg, test = rule.field, rule.arg, rule.test
        if rule.sees_none:

            def presence(values: Values) -> bool:
                v = values.get(name)
                return v is not INVALID and test(v, arg, as_of)

            return presence

        def condition(values: Values) -> bool:
            v = values.get(name)
            return v is not None and v is not INVALID and test(v, arg, as_of)

        return condition
    if isinstance(rule, NotOf):
        inner = bind(rule.child, as_of)
        return lambda values: not inner(values)
    parts = tuple(bind(c, as_of) for c in rule.children)
    if isinstance(rule, AllOf):

        def every(values: Values) -> bool:
            return all(part(values) for part in parts)

        return every

    def some(values: Values) -> bool:
        return any(part(values) for part in parts)

    return some


def evaluate(rule: Rule, values: Values, as_of: dt.date) -> bool:
    """Evaluate once (tests, lint); hot paths :func:`bind` once and reuse the predicate."""
    return bind(rule, as_of)(values)


# -- parsing ---------------------------------------------------------------------------------


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class RuleContext:
    """What a rule may refer to, and where it lives (for messages)."""

    registry: Catalog
    properties: Mapping[str, PropertyType]
    source: str
    params: Mapping[str, Any] = dc_field(default_factory=dict)
    #: parameter name → where its value was set, e.g. "segsync.toml [segments.params]"
    param_origin: Mapping[str, str] = dc_field(default_factory=dict)
    #: parameters rules referred to (filled while parsing)
    used_params: set[str] = dc_field(default_factory=set, compare=False)

    def field_type(self, name: str) -> FeatureType | None:
        feature = self.registry.features.get(name)
        if feature is not None:
            return feature.type
        return self.properties.get(name)

    def known_fields(self) -> list[str]:
        return sorted({*self.registry.features, *self.properties})

    def fail(self, loc: str, problem: str, hint: str = "") -> ManifestError:
        return ManifestError(f"{self.source}: {loc}", problem, hint)


_NODE_KEYS = ("all", "any", "not")
_CONDITION_KEYS = ("field", "op", "value")
_MISSING = object()


def parse_rule(raw: Any, ctx: RuleContext, loc: str) -> Rule:
    """Parse one rule node found at ``loc`` (e.g. ``sets[0].segments[2].when``)."""
    if not isinstance(raw, Mapping):
        raise ctx.fail(
            loc,
            "a rule must be a table: {all = [...]}, {any = [...]}, {not = {...}} or {field, op, value}",
        )
    keys = list(raw)
    combinators = [k for k in keys if k in _NODE_KEYS]
    if combinators:
        if len(keys) != 1:
            raise ctx.fail(loc, f"a rule table holds exactly one of all/any/not, found {', '.join(keys)}")
        kind = combinators[0]
        if kind == "not":
            return NotOf(parse_rule(raw["not"], ctx, f"{loc}.not"))
        items = raw[kind]
        if not isinstance(items, list):
            raise ctx.fail(f"{loc}.{kind}", f"'{kind}' takes a list of rules")
        children = tuple(parse_rule(item, ctx, f"{loc}.{kind}[{i}]") for i, item in enumerate(items))
        return AllOf(children) if kind == "all" else AnyOf(children)
    for key in keys:
        if key not in _CONDITION_KEYS:
            hint = did_you_mean(key, (*_CONDITION_KEYS, *_NODE_KEYS))
            raise ctx.fail(
                f"{loc}.{key}", "unknown key; a rule is {all|any|not = ...} or {field, op, value}", hint
            )
    return _parse_condition(raw, ctx, loc)


def _parse_condition(raw: Mapping[str, Any], ctx: RuleContext, loc: str) -> Condition:
    name = raw.get("field")
    if not isinstance(name, str):
        raise ctx.fail(f"{loc}.field" if "field" in raw else loc, 'a condition needs field = "<name>"')
    ftype = ctx.field_type(name)
    if ftype is None:
        hint = did_you_mean(name, ctx.known_fields()) or "declare contact properties under [properties]"
        raise ctx.fail(
            f"{loc}.field", f"unknown field {name!r} (neither a feature nor a declared property)", hint
        )
    op_name = raw.get("op")
    if not isinstance(op_name, str):
        raise ctx.fail(f"{loc}.op" if "op" in raw else loc, 'a condition needs op = "<operator>"')
    op = ctx.registry.operators.get(op_name)
    if op is None:
        valid = ", ".join(sorted(ctx.registry.operators))
        raise ctx.fail(
            f"{loc}.op",
            f"unknown operator {op_name!r}; valid: {valid}",
            did_you_mean(op_name, ctx.registry.operators),
        )
    if op.types and ftype not in op.types:
        raise ctx.fail(
            f"{loc}.op",
            f"operator {op_name!r} does not apply to {ftype} field {name!r} "
            f"(it applies to {', '.join(op.types)} fields)",
        )
    arg = _parse_arg(op, name, ftype, raw.get("value", _MISSING), ctx, f"{loc}.value")
    return Condition(
        name,
        op_name,
        arg,
        op.test,
        sees_none=op.arg == "none",
        where=f"{ctx.source}: {loc}",
        vector=op.vector,
    )


def _parse_arg(op: OperatorDef, name: str, ftype: FeatureType, raw: Any, ctx: RuleContext, loc: str) -> Any:
    origin = ""
    if isinstance(raw, str) and raw.startswith("$"):
        origin, raw = _param(raw, ctx, loc)
    elif isinstance(raw, list):
        resolved = []
        for item in raw:
            if isinstance(item, str) and item.startswith("$"):
                origin, item = _param(item, ctx, loc)
            resolved.append(item)
        raw = resolved

    def bad(problem: str) -> ManifestError:
        return ctx.fail(loc, problem + origin)

    kind = op.arg
    if kind == "none":
        if raw is _MISSING:
            return True
        if isinstance(raw, bool):
            return raw
        raise bad(f"{op.name!r} takes no value, or value = false to mean the opposite")
    if raw is _MISSING:
        shape = {"scalar": "a value", "list": "a list", "pair": "[low, high]", "days": "a number of days"}[
            kind
        ]
        raise ctx.fail(loc.rsplit(".", 1)[0], f"operator {op.name!r} needs value = {shape}")
    if kind == "days":
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise bad(f"{op.name!r} takes a whole number of days >= 0, got {raw!r}")
        return raw
    if kind == "scalar":
        return _typed(raw, ftype, name, bad)
    if not isinstance(raw, list):
        raise bad(f"{op.name!r} takes a list, got {raw!r}")
    if kind == "list":
        if not raw:
            raise bad(f"{op.name!r} needs at least one value")
        return tuple(_typed(v, ftype, name, bad) for v in raw)
    if len(raw) != 2:
        raise bad(f"{op.name!r} takes [low, high], got {len(raw)} value(s)")
    low, high = (_typed(v, ftype, name, bad) for v in raw)
    try:
        ordered = low <= high
    except TypeError:
        ordered = False
    if not ordered:
        raise bad(f"{op.name!r} takes [low, high] with low <= high, got {raw!r}")
    return (low, high)


def _param(ref: str, ctx: RuleContext, loc: str) -> tuple[str, Any]:
    key = ref[1:]
    if key not in ctx.params:
        known = ", ".join(sorted(ctx.params)) or "none"
        raise ctx.fail(
            loc, f"unknown parameter {ref!r} (parameters here: {known})", did_you_mean(key, ctx.params)
        )
    ctx.used_params.add(key)
    where = ctx.param_origin.get(key, "the pack's [pack.params]")
    return f" (from parameter {ref}, set in {where})", ctx.params[key]


def _typed(raw: Any, ftype: FeatureType, name: str, bad: Callable[[str], ManifestError]) -> Any:
    if ftype == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
            raise bad(f"field {name!r} is a number; got {raw!r}")
        return Decimal(str(raw))
    if ftype == "string":
        if not isinstance(raw, str):
            raise bad(f"field {name!r} is a string; got {raw!r} (quote it)")
        return raw
    if ftype == "boolean":
        if not isinstance(raw, bool):
            raise bad(f"field {name!r} is a boolean; got {raw!r} (use true or false)")
        return raw
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        parsed = parse_date(raw, epoch_ms=False)
        if parsed is not None:
            return parsed
    raise bad(f"field {name!r} is a date; got {raw!r} (write 2024-01-31)")


# -- CRM values ------------------------------------------------------------------------------


def parse_date(text: str, *, epoch_ms: bool = True) -> dt.date | None:
    """A date from an ISO date, an ISO datetime or (CRMs send these) a millisecond epoch string.

    Datetimes keep their own calendar date; epoch milliseconds are read as UTC, which is how
    HubSpot stores date properties (midnight UTC).
    """
    text = text.strip()
    if epoch_ms and text.isdigit():
        try:
            return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC).date()
        except (OverflowError, ValueError, OSError):
            return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        return None


def as_decimal(text: str) -> Decimal | None:
    """A finite Decimal from a CRM string, or None if it is not one."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def coerce(raw: str | None, ptype: PropertyType) -> Any:
    """A contact property's CRM string as its declared type: None if empty, INVALID if unreadable."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if ptype == "string":
        return text
    value = as_decimal(text) if ptype == "number" else parse_date(text)
    return INVALID if value is None else value
