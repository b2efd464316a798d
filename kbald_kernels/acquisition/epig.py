"""EPIG acquisition (Bickford Smith et al. 2023): top-k or stochastic batches."""

from typing import Optional

import torch

from ..candidates import CandidatePool
from ..information import validated_epig
from ..library import (as_selection, candidates_argument, choice_argument, custom_op, fake_batch, fresh,
                       integer_argument, is_numpy, number_argument, optional_tensor, seed_argument, seed_value,
                       tensor_argument, top_order)
from ..validation import check_batch_size, check_log_probs_form, check_same_device
from .bald import check_stochastic, stochastic_order

EPIG_METHODS = ("top", "power", "softmax", "softrank")


def select_epig(log_probs, target_log_probs, batch_size, *, method="top", temperature=1.0, generator=None,
                target_weights=None, candidates=None, backend=None):
    """The batch by EPIG about the targets (:func:`kbald_kernels.epig`): the
    ``batch_size`` highest ("top"; ties to the smaller index), or drawn as stochastic
    BALD draws ("power", "softmax", "softrank"; Gumbel-top-k keyed by the seed).
    ``candidates``: pool indices or a boolean mask to choose among (default: all).

    Returns ``Selection(indices, scores)`` with the cumulative EPIG in pick order.
    ``torch.ops.kbald_kernels.select_epig``.
    """
    method = choice_argument(method, "method", EPIG_METHODS)
    out = _select_epig_op(tensor_argument(log_probs, "log_probs"),
                          tensor_argument(target_log_probs, "target_log_probs"),
                          integer_argument(batch_size, "batch_size"), method,
                          number_argument(temperature, "temperature", needed=method != "top"),
                          seed_argument(generator), optional_tensor(target_weights, "target_weights"),
                          candidates_argument(candidates), backend)
    return as_selection(out, is_numpy(log_probs))


def check_epig_method(method, temperature):
    if method not in EPIG_METHODS:
        raise ValueError(f"method must be one of {EPIG_METHODS}, got {method!r}")
    if method != "top":
        check_stochastic(method, temperature)


def _fake_epig_batch(log_probs, target_log_probs, batch_size, *args, **kwargs):
    check_same_device(log_probs=log_probs, target_log_probs=target_log_probs)
    return fake_batch(log_probs, batch_size)


@custom_op("select_epig", _fake_epig_batch)
def _select_epig_op(log_probs: torch.Tensor, target_log_probs: torch.Tensor, batch_size: int, method: str,
                    temperature: float, seed: Optional[int], target_weights: Optional[torch.Tensor],
                    candidates: Optional[torch.Tensor],
                    backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    check_epig_method(method, temperature)
    t, _ = check_log_probs_form(log_probs)
    pool = CandidatePool(t, candidates)
    size = check_batch_size(batch_size, pool.size)
    scores = pool.per_candidate(validated_epig(pool.t, target_log_probs, target_weights, backend,
                                               strict=False, rows=pool.t_rows))
    if method == "top":
        order = top_order(scores, size)
    else:
        order = stochastic_order(scores, size, method, temperature, seed_value(seed), pool.rows)
    return fresh((pool.from_candidates(order), scores[order].cumsum(0)), (log_probs, candidates))
