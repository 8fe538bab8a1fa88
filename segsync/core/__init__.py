"""The pure core: models, features, RFM, rules, segments, desired state, plan, lint.

Imports the standard library, pydantic and :mod:`segsync.errors` only: no platform, no retry
layer, no plugin registry, no IO and no clock (``as_of`` is passed in). Everything above it
(``sync``, ``plugins``, ``project``, ``cli``) may import it; it imports none of them.
"""
