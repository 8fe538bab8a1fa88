"""Fixtures shared by the core's test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["objects", "columns"])
def both_computes(request, monkeypatch):
    """Run a test module's tests on the object path (the oracle) and on the columnar core: the
    module's own ``compute`` name is swapped for each. Use with
    ``pytestmark = pytest.mark.usefixtures("both_computes")``."""
    from segsync.core.columns.objects import compute as columnar
    from segsync.core.desired import compute as objects

    monkeypatch.setattr(request.module, "compute", objects if request.param == "objects" else columnar)
    return request.param
