"""``[platforms.brevo]`` settings and Brevo's rate tiers. The API key is never here: it comes
from SEGSYNC_BREVO_API_KEY.

Brevo meters two budgets that matter to segsync (https://developers.brevo.com/docs/api-limits):
every endpoint under ``/v3/contacts/…`` (contacts, attributes, folders, lists, memberships,
imports) shares the *contacts* bucket, metered per second and per hour; every other endpoint
segsync uses (``/v3/crm/…`` deals and pipelines, ``/v3/orders``, ``/v3/processes``,
``/v3/account``) shares the *other* bucket, metered per hour only. The sandbox and the
plugin classify paths with the same function, :func:`bucket_for_path`.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Literal

from pydantic import Field, field_validator

from segsync import ConfigError, PlatformSettings, RateWindow

DEFAULT_BASE_URL = "https://api.brevo.com/v3"
BASE_URL_ENV = "SEGSYNC_BREVO_BASE_URL"

CONTACTS = "contacts"
OTHER = "other"

RateTier = Literal["general", "advanced", "extended"]

#: (requests, seconds) windows per bucket. "general" is every plan's base tier; "advanced" is
#: Professional/Enterprise; "extended" (Enterprise) is not published in full: the contacts
#: rate is a third-party figure and the hourly numbers are inferred from it (unconfirmed).
RATE_TIERS: dict[str, dict[str, tuple[tuple[int, float], ...]]] = {
    "general": {CONTACTS: ((10, 1.0), (36_000, 3600.0)), OTHER: ((100, 3600.0),)},
    "advanced": {CONTACTS: ((20, 1.0), (72_000, 3600.0)), OTHER: ((200, 3600.0),)},
    "extended": {CONTACTS: ((60, 1.0), (216_000, 3600.0)), OTHER: ((200, 3600.0),)},
}

_CONTACTS_PATH = re.compile(r"^(?:/v3)?/contacts(?:/|$)")


def bucket_for_path(path: str) -> str:
    """The rate bucket Brevo meters a request path in (with or without the ``/v3`` prefix)."""
    return CONTACTS if _CONTACTS_PATH.match(path) else OTHER


def tier_windows(tier: str) -> dict[str, list[RateWindow]]:
    return {
        bucket: [RateWindow(requests=n, seconds=s) for n, s in windows]
        for bucket, windows in RATE_TIERS[tier].items()
    }


class BrevoSettings(PlatformSettings):
    """Settings of one Brevo account; the defaults fit the base (general) rate tier."""

    rate_tier: RateTier = Field(
        "general",
        description=(
            "Brevo's API rate tier: general (every plan: contacts 10/s, other endpoints 100/hour), "
            "advanced (Professional/Enterprise: 20/s, 200/hour), extended (Enterprise)"
        ),
    )
    other_per_hour: int | None = Field(
        None,
        gt=0,
        description="override the hourly budget of non-contact endpoints (deals, orders, processes)",
    )
    purchases: Literal["deals", "orders"] = Field(
        "deals", description="where purchases come from: won CRM deals or eCommerce orders"
    )
    won_stages: tuple[str, ...] = Field(
        ("Won",),
        min_length=1,
        description="deal stages (names, case-insensitive, or stage ids) whose deals count as purchases",
    )
    amount_attribute: str = Field("amount", min_length=1, description="deal attribute holding the amount")
    close_date_attribute: str | None = Field(
        None,
        description=(
            "deal attribute holding the close date; default: 'close_date' if the deal attribute "
            "catalogue has it, else a date attribute labelled like 'close date', else the time the "
            "deal entered its stage (stage_updated_at)"
        ),
    )
    order_statuses: tuple[str, ...] = Field(
        ("completed", "complete", "paid", "shipped", "delivered"),
        min_length=1,
        description="eCommerce order statuses that count as purchases (case-insensitive)",
    )
    currency: str | None = Field(
        None, description="ISO code of the account's currency, recorded with purchases that name none"
    )
    currency_attribute: str | None = Field(
        None,
        description=(
            "deal attribute holding a deal's ISO currency code, for accounts that sell in several "
            "currencies; default: 'deal_currency' or 'currency' if the deal attribute catalogue has one"
        ),
    )
    property_attributes: dict[str, str] = Field(
        default_factory=dict,
        description="contact attribute names for neutral property names, e.g. {jobtitle = 'JOB_TITLE'}",
    )
    folder_name: str = Field("segsync", min_length=1, description="contact folder segsync's lists live in")
    import_list_name: str = Field(
        "segsync · synced contacts",
        min_length=1,
        description="list every contact segsync writes is imported into (Brevo imports need a list)",
    )
    put_max: int = Field(
        100,
        ge=0,
        le=10_000,
        description=(
            "field writes of at most this many contacts go one PUT per contact (contacts budget "
            "only); larger ones go through imports, whose status polls spend the hourly budget"
        ),
    )
    write_batch: int = Field(
        10_000, gt=0, le=50_000, description="contacts per field write (one or more imports)"
    )
    import_max_bytes: int = Field(
        8_000_000,
        gt=10_000,
        le=10_000_000,
        description="largest import body; Brevo refuses 10 MB and recommends staying near 8 MB",
    )
    import_readback: Literal["problems", "always"] = Field(
        "problems",
        description=(
            "after an import: read back every written value ('always'), or only when Brevo's "
            "import report lists invalid or duplicate rows ('problems'); contacts an import "
            "created for unknown emails are always found and deleted again"
        ),
    )
    import_poll_initial: float = Field(2.0, gt=0, description="seconds before the first import status poll")
    import_poll_max: float = Field(60.0, gt=0, description="longest wait between import status polls")
    import_timeout: float = Field(
        1800.0, gt=0, description="give up waiting for an import after this long (records retried next run)"
    )
    expected_import_polls: int = Field(
        3, ge=1, description="status polls one import usually takes (for cost estimates)"
    )
    readback_skew: float = Field(
        300.0,
        ge=0,
        description="seconds subtracted from Brevo's clock when reading back what an import changed",
    )
    contacts_page: int = Field(1000, gt=1, le=1000, description="contacts per page (Brevo's maximum: 1000)")
    deals_page: int = Field(
        50, gt=1, le=1000, description="deals per page (Brevo states no maximum; 50 is the cautious value)"
    )
    orders_page: int = Field(100, gt=1, le=100, description="orders per page (Brevo's maximum: 100)")

    @field_validator("base_url")
    @classmethod
    def _under_v3(cls, value: str | None) -> str | None:
        """Without ``/v3`` every call answers 401, which reads as a wrong key: say it here."""
        if value is not None and not urllib.parse.urlsplit(value).path.rstrip("/").endswith("/v3"):
            raise ConfigError(  # as PlatformSettings' own base_url check: one way for both
                "base_url must end with /v3, where Brevo's API lives: https://api.brevo.com/v3 "
                "(a sandbox prints its own)"
            )
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError("use a three-letter ISO 4217 code such as EUR or USD")
        return value

    @field_validator("property_attributes")
    @classmethod
    def _attribute_names(cls, value: dict[str, str]) -> dict[str, str]:
        for neutral, name in value.items():
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                raise ValueError(
                    f"{neutral} = {name!r}: Brevo attribute names are upper-case letters, digits and "
                    "underscores, starting with a letter"
                )
        return value

    def rate_windows(self) -> dict[str, list[RateWindow]]:
        windows = tier_windows(self.rate_tier)
        if self.other_per_hour is not None:
            windows[OTHER] = [RateWindow(requests=self.other_per_hour, seconds=3600.0)]
        return windows
