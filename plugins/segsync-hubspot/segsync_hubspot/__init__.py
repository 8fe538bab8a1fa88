"""segsync's HubSpot platform: registered with segsync through the ``segsync`` entry point."""

from __future__ import annotations

from collections.abc import Callable

from segsync import Platform, hookimpl


@hookimpl
def register_platforms(register: Callable[[type[Platform]], None]) -> None:
    # Imported here, not at the top: the SDK takes a fifth of a second to import, and commands
    # that need no platform (segsync score) build their registry without this hook.
    from segsync_hubspot.platform import HubSpotPlatform

    register(HubSpotPlatform)
