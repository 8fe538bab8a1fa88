"""Talking to CRMs: the platform protocol, the one retry layer, HTTP helpers, the engine that
runs a plan through a platform, and the state store. Imports :mod:`segsync.core`; never the
plugin manager, the project or the CLI, nor :mod:`segsync.sandbox` or :mod:`segsync.testing`.
"""
