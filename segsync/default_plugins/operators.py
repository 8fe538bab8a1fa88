"""Built-in rule operators, registered through the same hook plugins use.

Each ``test(value, arg, as_of)`` receives a value already read as the field's type (numbers
as ``Decimal``/``int``, dates as ``datetime.date``) and an ``arg`` the rule parser already
checked and converted; missing and unreadable values never reach these functions (see
:mod:`segsync.core.rules`), except for ``exists``, which is about presence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from segsync.core.catalog import FeatureType
from segsync.core.columns import ops
from segsync.plugins.hookspecs import hookimpl
from segsync.plugins.registry import OperatorRegister


def eq(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value == arg)


def neq(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value != arg)


def in_(value: Any, arg: tuple[Any, ...], as_of: dt.date) -> bool:
    return value in arg


def gt(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value > arg)


def gte(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value >= arg)


def lt(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value < arg)


def lte(value: Any, arg: Any, as_of: dt.date) -> bool:
    return bool(value <= arg)


def between(value: Any, arg: tuple[Any, Any], as_of: dt.date) -> bool:
    return bool(arg[0] <= value <= arg[1])


def exists(value: Any, arg: bool, as_of: dt.date) -> bool:
    return (value is not None) == arg


def _age_days(value: dt.date, as_of: dt.date) -> int:
    day = value.date() if isinstance(value, dt.datetime) else value
    return (as_of - day).days


def within_last_days(value: dt.date, arg: int, as_of: dt.date) -> bool:
    # Inclusive at both ends: today counts, and so does exactly `arg` days ago. Future dates
    # are not "within the last" days.
    return 0 <= _age_days(value, as_of) <= arg


def older_than_days(value: dt.date, arg: int, as_of: dt.date) -> bool:
    return _age_days(value, as_of) > arg


_ORDERED: tuple[FeatureType, ...] = ("number", "date")
_ANY_SCALAR: tuple[FeatureType, ...] = ("number", "string", "date", "boolean")


@hookimpl
def register_rule_operators(register: OperatorRegister) -> None:
    register.add_operator(
        "eq", eq, arg="scalar", types=_ANY_SCALAR, vector=ops.eq, description="equals the value"
    )
    register.add_operator(
        "neq",
        neq,
        arg="scalar",
        types=_ANY_SCALAR,
        vector=ops.neq,
        description="has a value other than the value",
    )
    register.add_operator(
        "in",
        in_,
        arg="list",
        types=_ANY_SCALAR,
        vector=ops.in_,
        description="equals one of the listed values",
    )
    register.add_operator(
        "gt",
        gt,
        arg="scalar",
        types=_ORDERED,
        vector=ops.gt,
        description="greater than (later than, for dates)",
    )
    register.add_operator(
        "gte", gte, arg="scalar", types=_ORDERED, vector=ops.gte, description="greater than or equal"
    )
    register.add_operator(
        "lt",
        lt,
        arg="scalar",
        types=_ORDERED,
        vector=ops.lt,
        description="less than (earlier than, for dates)",
    )
    register.add_operator(
        "lte", lte, arg="scalar", types=_ORDERED, vector=ops.lte, description="less than or equal"
    )
    register.add_operator(
        "between",
        between,
        arg="pair",
        types=_ORDERED,
        vector=ops.between,
        description="within [low, high], both included",
    )
    register.add_operator(
        "exists",
        exists,
        arg="none",
        vector=ops.exists,
        description="has a value; with value = false: has no value",
    )
    register.add_operator(
        "within_last_days",
        within_last_days,
        arg="days",
        types=("date",),
        vector=ops.within_last_days,
        description="a date from `value` days before the reference date up to it, both included",
    )
    register.add_operator(
        "older_than_days",
        older_than_days,
        arg="days",
        types=("date",),
        vector=ops.older_than_days,
        description="a date more than `value` days before the reference date",
    )
