"""Loopback emulators of CRM APIs that the real SDKs talk to.

Each platform plugin ships one (``Platform.sandbox()``): a :class:`SandboxBase` facade with
a :class:`SandboxServer` (an :class:`EmulatorServer`) that knows the platform's routes.
``segsync sandbox <platform>`` runs it in the foreground; ``segsync demo`` and the end-to-end
tests run it in a thread.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Protocol

from segsync.sandbox.base import RateTake, SandboxBase, SandboxServer
from segsync.sandbox.demo import demo_dataset
from segsync.sandbox.seed import (
    SeedData,
    SeedError,
    SeedRules,
    check_seed,
    load_seed_dir,
)
from segsync.sandbox.server import (
    EmulatorServer,
    FaultPlan,
    Handler,
    HttpError,
    Request,
    Response,
    derived_account_id,
)
from segsync.sandbox.webhooks import Signer, WebhookSender
from segsync.sync.runner import Clock


class Sandbox(Protocol):
    """What the CLI, the demo and the tests need from a platform's emulator."""

    platform: ClassVar[str]
    #: The platform's own rules for seed ids (integers?), checked by ``load_seed_dir`` with the format's.
    seed_rules: ClassVar[SeedRules]
    #: The secret the sandbox accepts (token / API key).
    secret: str
    server: EmulatorServer

    def __init__(
        self,
        *,
        secret: str,
        port: int = 0,
        traffic_log: Path | None = None,
        faults: FaultPlan | None = None,
        clock: Clock | None = None,
        account_id: str | None = None,
    ) -> None:
        """``account_id`` None derives the account from ``secret``, as the CRMs do."""

    @property
    def base_url(self) -> str:
        """The value for ``[platforms.<name>] base_url`` that points the SDK here."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def seed(self, data: SeedData) -> None:
        """Load contacts and purchases (won/lost/open deals) into the emulated account.

        Runs :func:`check_seed` first (against what the account holds too) and loads nothing
        when it raises :class:`SeedError`. A deal with an empty ``contact_id`` is served with
        no contact, as the CRM serves a deal whose contact was deleted.
        """

    def add_purchase(self, contact_id: str, amount: Decimal, closed_at: dt.datetime) -> str:
        """Record a new won purchase for a contact, as a user of the CRM would; returns its id."""

    def delete_contact(self, contact_id: str) -> None:
        """Delete a contact behind segsync's back."""

    def delete_list(self, list_id: str) -> None:
        """Delete a list behind segsync's back."""

    def snapshot(self) -> dict[str, object]:
        """The segsync-visible end state, comparable across runs.

        ``{"fields": {contact_id: {field_key: value_str}}, "lists": {list_name: sorted ids},
        "field_defs": sorted field names, "list_names": sorted list names (duplicates kept)}``
        with field keys platform-neutral (lower-case) and only segsync-managed fields/lists.
        """


__all__ = [
    "Signer",
    "WebhookSender",
    "EmulatorServer",
    "FaultPlan",
    "Handler",
    "HttpError",
    "RateTake",
    "Request",
    "Response",
    "Sandbox",
    "SandboxBase",
    "SandboxServer",
    "SeedData",
    "SeedError",
    "SeedRules",
    "check_seed",
    "demo_dataset",
    "derived_account_id",
    "load_seed_dir",
]
