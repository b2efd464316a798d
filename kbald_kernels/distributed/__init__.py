"""The acquisitions over a pool sharded across the ranks of a ``torch.distributed``
process group (NCCL for CUDA tensors, gloo for CPU tensors).

Each rank passes its own contiguous shard of the pool, shards in rank order (any
sizes of at least one point), and every other argument alike. Every rank returns
the same :class:`~kbald_kernels.Selection`, in **global** pool indices, equal to
the single-process call on the concatenated pool with the same seed: random draws
are keyed by global pool index. The pool never moves: per pick one all-gather of
the best (key, global index) of each rank and one broadcast of the newest pick's
row from its owner. ``group``: the process group (default: the world). A wrong
input on any rank raises on every rank (:class:`ShardError` on the others), so
no rank hangs in a collective.
"""

from .bald import (select_bald, select_conservative_bald, select_kbald, select_kbald_dynamic,
                   select_stochastic_bald)
from .batchbald import select_batchbald
from .epig import epig, select_epig
from .kmeanspp import KMeansPPOrdering, kmeanspp, select_badge, select_coreset
from .shards import ShardError
from .uncertainty import candidate_subset, select_uncertainty

__all__ = ["KMeansPPOrdering", "ShardError", "candidate_subset", "epig", "kmeanspp", "select_badge", "select_bald",
           "select_batchbald", "select_conservative_bald", "select_coreset", "select_epig", "select_kbald",
           "select_kbald_dynamic", "select_stochastic_bald", "select_uncertainty"]
