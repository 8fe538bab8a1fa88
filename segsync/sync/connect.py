"""Which account a connected platform belongs to, as the state store keys it."""

from __future__ import annotations

import re

from segsync.errors import PlatformError
from segsync.sync.platform import Platform

#: What an account id may look like: the CRM's own identifier, never free text.
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def account_key(platform: Platform) -> str:
    """Which CRM account a platform's state (ids, cursors, caches, locks) belongs to.

    Asked of the CRM itself (:meth:`Platform.account_id`: HubSpot's portal id, Brevo's
    organisation), because the API host is the same for every account and a project whose
    credential changes to another account must not reuse anything remembered for the first.
    """
    ident = platform.account_id().strip()
    if not _ACCOUNT_ID.fullmatch(ident):
        raise PlatformError(
            "the CRM answered with no usable account id; check the credential with `segsync check`",
            platform=platform.name,
            operation="account",
        )
    return f"{platform.name}:{ident}"


__all__ = ["account_key"]
