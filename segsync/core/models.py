"""Platform-neutral records that flow between plugins, the core and the engine.

Plugins turn CRM JSON into these (``Contact``, ``Purchase``, ``Rejection``) when pulling, and
turn ``FieldSpec``/``ListSpec``/``ContactUpdate`` into CRM calls when writing. Everything here
is immutable and free of IO.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A value segsync writes to (or reads back from) one CRM field. ``None`` clears the field.
FieldValue = str | int | Decimal | dt.date | None

FieldType = Literal["string", "number", "date", "enumeration"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Contact(_Frozen):
    """One CRM contact as pulled.

    ``properties`` holds the contact's own CRM properties that rules may use, as the CRM's
    strings, keyed by the platform-neutral names (``email, firstname, lastname, country, city,
    age, jobtitle, company_size, createdate`` plus anything else requested).
    ``managed`` holds the current values of the fields segsync manages (keyed by
    ``FieldSpec.key``), parsed into core types, so the planner can diff against what is really
    in the CRM. ``lists`` is the set of segsync list *keys* the contact is in, when the platform
    can tell cheaply (Brevo carries ``listIds`` inline); ``None`` when unknown.
    """

    id: str
    email: str | None = None
    properties: Mapping[str, str | None] = Field(default_factory=dict)
    managed: Mapping[str, FieldValue] = Field(default_factory=dict)
    lists: frozenset[str] | None = None


class ContactGone(_Frozen):
    """A contact seen before is gone from the CRM (deleted, or merged into another)."""

    id: str


class Purchase(_Frozen):
    """One won deal or order attributed to one contact.

    A deal associated with several contacts becomes one ``Purchase`` per contact (same ``id``),
    each carrying the full amount: every buyer on the deal bought it. ``amount`` is already in
    the account's home currency when the CRM knows it (HubSpot ``amount_in_home_currency``);
    ``currency`` is the ISO code of ``amount`` or ``None`` when the CRM does not say.
    """

    id: str
    contact_id: str
    amount: Decimal
    currency: str | None = None
    closed_at: dt.datetime
    modified_at: dt.datetime | None = None


class PurchaseRetracted(_Frozen):
    """A purchase seen before is gone: deal deleted, moved out of a won stage, order cancelled."""

    id: str


class PullProgress(_Frozen):
    """A watermark in a purchase pull: every record modified up to ``modified_at`` was yielded.

    A platform whose incremental pull comes in modification order yields one after each batch,
    so the cursor passes records that are no purchase (open deals, rejected ones); without it
    they would be read again by every pull until a newer purchase came.
    """

    modified_at: dt.datetime


class PurchaseSummary(_Frozen):
    """Per-contact purchase aggregates the features are computed from (core computes it)."""

    orders: int
    revenue: Decimal
    first_purchase: dt.datetime
    last_purchase: dt.datetime

    @property
    def average_order(self) -> Decimal:
        return self.revenue / self.orders if self.orders else Decimal(0)


class Rejection(_Frozen):
    """A CRM record segsync could not use, with the reason. Recorded, never silently dropped."""

    kind: Literal["contact", "purchase", "write", "membership"]
    record_id: str
    reason: str

    @field_validator("record_id", "reason")
    @classmethod
    def _encodable(cls, text: str) -> str:
        """Rejections are stored and printed as UTF-8, which cannot carry an unpaired surrogate
        (a CRM's JSON ``"\\ud800"`` escape decodes to one): those are kept as escapes."""
        try:
            text.encode()
        except UnicodeEncodeError:
            return text.encode(errors="backslashreplace").decode()
        return text


class FieldOption(_Frozen):
    value: str
    label: str
    description: str = ""


class FieldSpec(_Frozen):
    """A contact field segsync creates and owns.

    ``key`` is platform-neutral snake case (``segsync_rfm_segment``); each platform maps it to
    its own naming (HubSpot keeps it, Brevo upper-cases it).
    """

    key: str
    label: str
    type: FieldType
    description: str = ""
    options: tuple[FieldOption, ...] = ()


class ListSpec(_Frozen):
    """A list segsync keeps, one per segment that asks for a list."""

    key: str
    name: str
    description: str = ""
    #: For platforms that can keep membership themselves (HubSpot DYNAMIC lists): the managed
    #: enumeration field and the option value whose holders are the members.
    filter_field: str | None = None
    filter_value: str | None = None


class RemoteField(_Frozen):
    """A field as it exists in the CRM."""

    name: str
    type: str
    options: tuple[str, ...] = ()
    group: str | None = None


class RemoteList(_Frozen):
    id: str
    name: str
    dynamic: bool = False
    size: int | None = None


class ContactUpdate(_Frozen):
    """New values for some managed fields of one contact (only the changed ones).

    ``email`` is the contact's address as this job pulled it, None when the job did not (it
    came from the contact cache, where a deleted contact may linger): a platform that finds
    contacts by e-mail looks a None one up by id first."""

    contact_id: str
    email: str | None = None
    values: Mapping[str, FieldValue]


class RecordFailure(_Frozen):
    record_id: str
    reason: str


class WriteResult(_Frozen):
    """Outcome of one write call: which records took, which failed and why."""

    ok: tuple[str, ...] = ()
    failed: tuple[RecordFailure, ...] = ()
