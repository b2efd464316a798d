"""The result type every acquisition returns."""

from typing import Any, NamedTuple


class Selection(NamedTuple):
    """``indices``: int64 pool indices in selection order. ``scores``: the acquisition
    value after each pick (cumulative for BALD-family methods, the picked point's
    squared distance for k-means++/CORESET). Both on the input's device, or numpy."""

    indices: Any
    scores: Any
