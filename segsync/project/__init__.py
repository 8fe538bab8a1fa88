"""A segsync project: ``segsync.toml``, manifests, and what each command does (check, plan, sync,
jobs, unlock, demo). Imports every wing below it; only :mod:`segsync.cli` imports it."""
