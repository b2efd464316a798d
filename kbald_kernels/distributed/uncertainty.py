"""Uncertainty sampling and candidate subsets over a sharded pool."""

import torch

from ..acquisition.uncertainty import PROXY_SCORES, UNCERTAINTY_SCORES, uncertainty_values
from ..reference import gumbel_noise
from ..selection import Selection
from ..validation import check_batch_size, to_output
from .shards import Shard, log_probs_shard, validated_entropies


def select_uncertainty(log_probs, batch_size, *, score="entropy", candidates=None, group=None, backend=None):
    """Top-k uncertainty sampling over the sharded pool, as
    :func:`kbald_kernels.select_uncertainty` (each pick's own score). Communication:
    one all-gather of 24·batch_size bytes a rank."""
    if score not in UNCERTAINTY_SCORES:
        raise ValueError(f"score must be one of {UNCERTAINTY_SCORES}, got {score!r}")
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    indices, values = _most_uncertain(shard, t, check_batch_size(batch_size, selectable), score, eligible, backend)
    return Selection(to_output(indices, np_in), to_output(values, np_in))


def _most_uncertain(shard, t, size, score, eligible, backend):
    """(global indices, their scores) of the ``size`` most uncertain points by ``score``."""
    values = uncertainty_values(score, *validated_entropies(shard, t, backend, op="uncertainties"))
    # The smallest margins are the most uncertain.
    indices, picked = shard.top(-values if score == "margin" else values, size, values, eligible)
    return indices, picked.to(values.dtype)


def candidate_subset(log_probs, size, *, score="random", generator=None, group=None, backend=None):
    """Global pool indices of ``size`` candidates, sorted, the same on every rank, as
    :func:`kbald_kernels.candidate_subset` on the whole pool: a keyed uniform subset
    (``score="random"``; ``log_probs`` may then be this rank's number of points) or
    the ``size`` points a proxy ranks most uncertain. Communication: one all-gather
    of 24·size bytes a rank."""
    if score not in PROXY_SCORES:
        raise ValueError(f"score must be one of {PROXY_SCORES}, got {score!r}")
    if score == "random" and isinstance(log_probs, int) and not isinstance(log_probs, bool):
        def check():
            if log_probs < 1:
                raise ValueError(f"this rank's pool size must be >= 1, got {log_probs}")
            return log_probs, ("a count of points",), torch.device("cpu")

        shard, t, np_in = Shard(check, group), None, False
    else:
        shard, t, np_in, _, _ = log_probs_shard(log_probs, group)
    size = check_batch_size(size, shard.total, "size")
    if score == "random":
        keys = gumbel_noise(shard.same_seed(generator), 0, shard.global_rows())
        indices = shard.top(keys, size, keys)[0]
    else:
        indices = _most_uncertain(shard, t, size, score, None, backend)[0]
    return to_output(indices.sort().values, np_in)
