"""Greedy BatchBALD (Kirsch et al. 2019) on the posterior-weight configurations."""

from functools import partial
from typing import Optional

import torch

from .. import kernel_ops
from ..candidates import CandidatePool
from ..information import validated_entropies
from ..reference import argmax_unselected, configurations_entropy, empty_configurations, extend_configurations
from ..reference.workspace import compute_dtype
from ..library import (as_selection, candidates_argument, custom_op, fake_batch, fresh, integer_argument, is_numpy,
                       seed_argument, seeded_generator, tensor_argument)
from ..validation import check_batch_size, check_log_probs_form, check_positive_int


def select_batchbald(log_probs, batch_size, *, num_samples=10_000, generator=None, candidates=None, backend=None):
    """Greedy BatchBALD: each step adds the point maximising I[Y_S, Y_i; W].

    ``score(i|S) = H[Y_S, Y_i] - Σ_{s∈S∪{i}} conditional_entropy[s]``, with label
    configurations of S enumerated exactly while there are at most ``num_samples``
    of them and sampled ancestrally (``num_samples`` of them) after that.
    ``generator`` (int seed or torch.Generator) makes the sampling reproducible.
    Scores are the cumulative joint mutual information, as batchbald_redux reports.
    ``candidates``: pool indices or a boolean mask to choose among (default: all).

    Memory beyond O(N): the configurations' weights, at most ``num_samples`` × K.
    The conditional entropies' pass validates the input; the pool is never copied.
    ``torch.ops.kbald_kernels.select_batchbald``; a torch.Generator gives its seed by one draw.
    """
    out = _select_batchbald_op(tensor_argument(log_probs, "log_probs"), integer_argument(batch_size, "batch_size"),
                               integer_argument(num_samples, "num_samples",
                                                lambda v: check_positive_int(v, "num_samples")),
                               seed_argument(generator), candidates_argument(candidates),
                               backend)
    return as_selection(out, is_numpy(log_probs))


@custom_op("select_batchbald", fake_batch)
def _select_batchbald_op(log_probs: torch.Tensor, batch_size: int, num_samples: int, seed: Optional[int],
                         candidates: Optional[torch.Tensor],
                         backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    t, _ = check_log_probs_form(log_probs)
    pool = CandidatePool(t, candidates)
    t = pool.t
    size = check_batch_size(batch_size, pool.size)
    num_samples = check_positive_int(num_samples, "num_samples")
    device = t.device
    gen = seeded_generator(seed, device)
    conditional = validated_entropies(t, backend, strict=False, rows=pool.t_rows)[1]
    accumulate = partial(kernel_ops.accumulate_joint_entropy, backend=backend, strict=False)

    configs = empty_configurations(t.shape[1], compute_dtype(t.dtype), device)
    selected = pool.unpicked()
    conditional_sum = torch.zeros(1, dtype=conditional.dtype, device=device)
    picks, totals = [], []
    # The loop stays on the device: the pick is an index tensor, never read back.
    for step in range(size):
        joint = configurations_entropy(configs) + accumulate(configs.weights, configs.alpha, t)
        scores = joint - conditional_sum - conditional
        pick = argmax_unselected(scores, selected)
        picks.append(pick)
        totals.append(scores.index_select(0, pick))
        selected.index_fill_(0, pick, True)
        conditional_sum = conditional_sum + conditional.index_select(0, pick)
        if step < size - 1:
            configs = extend_configurations(configs, t.index_select(0, pick)[0], num_samples, gen)
    return fresh((pool.from_rows(torch.cat(picks)), torch.cat(totals)), (log_probs, candidates))
