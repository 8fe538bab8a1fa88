"""The columnar core: purchases, features, scores and segments as columns (numpy). Pure.

* :mod:`~segsync.core.columns.ledger`: purchases as columns, per-contact aggregates;
* :mod:`~segsync.core.columns.scoring`: R, F and M scores, counting-based where it can;
* :mod:`~segsync.core.columns.column`: what rules read, and the :class:`Frame` vector features see;
* :mod:`~segsync.core.columns.ops`: the built-in operators over whole columns;
* :mod:`~segsync.core.columns.compute`: rules and sets over columns (:func:`score`);
* :mod:`~segsync.core.columns.objects`: the same, behind the object interface the engine uses.

:func:`segsync.core.desired.compute` (one Python object per record) stays as the oracle the
golden tests hold every result of this package to.
"""

from segsync.core.columns.column import Column, Frame, coded_column
from segsync.core.columns.compute import Scored, SetResult, score
from segsync.core.columns.ledger import Aggregates, PurchaseColumns, aggregate

__all__ = [
    "Aggregates",
    "Column",
    "Frame",
    "PurchaseColumns",
    "Scored",
    "SetResult",
    "aggregate",
    "coded_column",
    "score",
]
