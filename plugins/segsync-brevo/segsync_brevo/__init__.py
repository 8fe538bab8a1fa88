"""segsync's Brevo platform: registered with segsync through the ``segsync`` entry point."""

from __future__ import annotations

from collections.abc import Callable

from segsync import Platform, hookimpl
from segsync_brevo.platform import BrevoPlatform


@hookimpl
def register_platforms(register: Callable[[type[Platform]], None]) -> None:
    register(BrevoPlatform)
