"""The plugin system: hookspecs, the plugin manager factory, register objects and the registry
they fill. Imports :mod:`segsync.core` and :mod:`segsync.sync`."""
