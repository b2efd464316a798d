"""EPIG acquisition (Bickford Smith et al. 2023): top-k or stochastic batches."""

import torch

from ..candidates import CandidatePool
from ..information import validated_epig
from ..selection import Selection
from ..validation import check_batch_size, check_log_probs_form, seed_from, to_output
from .bald import check_stochastic, stochastic_order

EPIG_METHODS = ("top", "power", "softmax", "softrank")


def select_epig(log_probs, target_log_probs, batch_size, *, method="top", temperature=1.0, generator=None,
                target_weights=None, candidates=None, backend=None):
    """The batch by EPIG about the targets (:func:`kbald_kernels.epig`): the
    ``batch_size`` highest ("top"; ties to the smaller index), or drawn as stochastic
    BALD draws ("power", "softmax", "softrank"; Gumbel-top-k keyed by the seed).
    ``candidates``: pool indices or a boolean mask to choose among (default: all).

    Returns ``Selection(indices, scores)`` with the cumulative EPIG in pick order.
    """
    if method not in EPIG_METHODS:
        raise ValueError(f"method must be one of {EPIG_METHODS}, got {method!r}")
    if method != "top":
        check_stochastic(method, temperature)
    t, np_in = check_log_probs_form(log_probs)
    pool = CandidatePool(t, candidates)
    size = check_batch_size(batch_size, pool.size)
    scores = pool.per_candidate(validated_epig(pool.t, target_log_probs, target_weights, backend,
                                                      strict=False, rows=pool.t_rows))
    if method == "top":
        order = torch.sort(scores, descending=True, stable=True).indices[:size]
    else:
        order = stochastic_order(scores, size, method, temperature, seed_from(generator), pool.rows)
    return Selection(to_output(pool.from_candidates(order), np_in), to_output(scores[order].cumsum(0), np_in))
