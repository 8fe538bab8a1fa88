"""The RFM settings (``[rfm]`` in segsync.toml): every choice the field disagrees on, explicit.

In the core because scoring reads them; :mod:`segsync.project.config` reads them from TOML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from segsync.core.rules import PropertyType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmSettings(_Strict):
    """Every RFM choice the field disagrees on, explicit, with the most common default."""

    bins: int = Field(
        5,
        ge=2,
        le=10,
        description="scores run from 1 to bins (5: quintiles; 4: quartiles; 3: terciles). "
        "The shipped segment maps are written for 5",
    )
    cutoffs: Literal["quantile", "fixed"] = Field(
        "quantile",
        description='"quantile": scores relative to your customers (share of customers strictly below, '
        'ties always equal); "fixed": the cut-off lists below',
    )
    recency_days_cutoffs: list[int] | None = Field(
        None,
        validate_default=True,
        examples=[[30, 90, 180, 365]],
        description="fixed only: ascending days since the last purchase, bins - 1 values; "
        "up to the first scores bins, past the last scores 1",
    )
    frequency_cutoffs: list[int] | None = Field(
        None,
        validate_default=True,
        examples=[[2, 3, 5, 8]],
        description="fixed only: ascending order counts, bins - 1 values; "
        "each is the lowest count of the next score up",
    )
    monetary_cutoffs: list[Decimal] | None = Field(
        None,
        validate_default=True,
        examples=[[100, 250, 500, 1000]],
        description="fixed only: ascending amounts (total or average, see monetary), bins - 1 values; "
        "each is the lowest amount of the next score up",
    )
    monetary: Literal["total", "average"] = Field(
        "total", description='"total": revenue; "average": revenue / orders (average order value)'
    )
    frequency_window_days: int = Field(
        0,
        ge=0,
        description="0: all history counts for frequency and monetary; N: only orders of the last N days "
        "(recency always uses all history)",
    )
    as_of: dt.date | None = Field(
        None,
        examples=[dt.date(2025, 1, 31)],
        description="fixed reference date for recency and day-based rules; default: the day of the run",
    )
    currency: str = Field(
        "USD",
        pattern=r"^[A-Za-z]{3}$",
        description="home currency (ISO code); purchases in another currency are rejected with a reason, "
        "never summed",
    )
    refunds: Literal["subtract", "ignore"] = Field(
        "subtract",
        description='negative amounts: "subtract" from revenue (never counted as orders) or "ignore"',
    )
    zero_amounts: Literal["count", "ignore"] = Field(
        "count", description='orders of amount 0: "count" as orders (free samples, 100% coupons) or "ignore"'
    )
    write_recency_days: bool = Field(
        True,
        description="write segsync_recency_days; it changes every day for every customer, "
        "so turning it off saves one write per customer per day",
    )

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("recency_days_cutoffs", "frequency_cutoffs", "monetary_cutoffs")
    @classmethod
    def _cutoffs(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        bins, mode = info.data.get("bins"), info.data.get("cutoffs")
        if bins is None or mode is None:
            return value  # bins or cutoffs is itself invalid and reported
        if value is None:
            if mode == "fixed":
                raise ValueError(f'required when cutoffs = "fixed": {bins - 1} ascending values (bins - 1)')
            return value
        if len(value) != bins - 1:
            raise ValueError(f"needs exactly bins - 1 = {bins - 1} values, got {len(value)}")
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"values must be strictly ascending, got {[str(v) for v in value]}")
        if any(v < 0 for v in value):
            raise ValueError("values must not be negative")
        return value


class ScoringConfig(Protocol):
    """What computing segments needs of a project's configuration
    (:class:`segsync.project.config.ProjectConfig` is one)."""

    @property
    def rfm(self) -> RfmSettings: ...

    @property
    def properties(self) -> Mapping[str, PropertyType]: ...


__all__ = ["RfmSettings", "ScoringConfig"]
