"""``[platforms.hubspot]`` settings. The token is never here: it comes from SEGSYNC_HUBSPOT_TOKEN."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from segsync import PlatformSettings

DEFAULT_BASE_URL = "https://api.hubapi.com"


class HubSpotSettings(PlatformSettings):
    """Settings of one HubSpot account; defaults fit a Professional/Enterprise portal."""

    list_type: Literal["MANUAL", "DYNAMIC"] = Field(
        "MANUAL",
        description=(
            "MANUAL: segsync keeps list members itself; DYNAMIC: each list filters on the segment "
            "property, HubSpot keeps members and membership costs no API calls"
        ),
    )
    rate_limit_per_10s: int = Field(
        190, gt=0, description="requests per rolling 10 s (Free/Starter 100, Professional/Enterprise 190)"
    )
    rate_limit_per_day: int = Field(
        625_000,
        gt=0,
        description="requests per day (Free/Starter 250,000, Professional 625,000, Enterprise 1,000,000)",
    )
    property_group: str = Field("segsync", description="contact property group segsync's properties live in")
    property_group_label: str = Field("segsync", description="display label of that group")
    membership_batch: int = Field(
        100,
        gt=0,
        le=100_000,
        description="record ids per list add-and-remove call (HubSpot states no maximum; 100 is cautious)",
    )
    home_currency: str | None = Field(
        None,
        description=(
            "ISO code of the portal's company currency; deals priced in it (or carrying "
            "amount_in_home_currency) get this currency, others keep deal_currency_code"
        ),
    )
    incremental: bool = Field(
        True,
        description="after a full pull, read only the deals changed since (CRM search); "
        "false reads every deal on every sync",
    )
    search_per_second: int = Field(4, ge=1, description="CRM search requests a second (crm-api-facts §1.4)")
    search_result_cap: int = Field(
        10_000, ge=200, description="results one search can page through; past it the pull restarts the query"
    )
    deal_pipelines: tuple[str, ...] = Field(
        (), description="pipeline ids whose closed-won deals count as purchases (default: all pipelines)"
    )

    @field_validator("property_group")
    @classmethod
    def _group_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError("use lower-case letters, digits and underscores, starting with a letter")
        return value

    @field_validator("home_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError("use a three-letter ISO 4217 code such as USD or EUR")
        return value

    @property
    def api_base(self) -> str:
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")
