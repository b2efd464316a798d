"""Greedy BatchBALD over a sharded pool."""

import torch

from ..backends import implementation
from ..reference import configurations_entropy, empty_configurations, extend_configurations
from ..reference.workspace import compute_dtype
from ..selection import Selection
from ..validation import check_batch_size, check_positive_int, to_output, torch_generator
from .shards import global_indices, log_probs_shard, row_message, validated_entropies


def select_batchbald(log_probs, batch_size, *, num_samples=10_000, generator=None, candidates=None, group=None,
                     backend=None):
    """Greedy BatchBALD over the sharded pool, as :func:`kbald_kernels.select_batchbald`
    (exact and sampled configurations): every rank extends the configurations
    identically from the broadcast row, the sampling seeded alike (an int seed gives
    the single-process picks; None draws one seed on rank 0). Communication per
    pick: one all-gather of 24 bytes a rank and one broadcast of 8·(K·C + 1) bytes."""
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(batch_size, selectable)
    num_samples = check_positive_int(num_samples, "num_samples")
    device = t.device
    gen = torch_generator(shard.same_seed(generator), device)
    conditional = validated_entropies(shard, t, backend)[1]
    accumulate = implementation("accumulate_joint_entropy", backend, device, strict=False)
    configs = empty_configurations(t.shape[1], compute_dtype(t.dtype), device)
    excluded = shard.unpicked(eligible)
    conditional_sum = torch.zeros(1, dtype=conditional.dtype, device=device)
    message = row_message(t, [conditional])
    picks, totals = [], []
    for step in range(size):
        joint = configurations_entropy(configs) + accumulate(configs.weights, configs.alpha, t)
        scores = joint - conditional_sum - conditional
        index, value = shard.take_best(scores, excluded)
        picks.append(index)
        totals.append(value)
        if step < size - 1:
            row = shard.broadcast_row(index, message, t.shape[1] * t.shape[2] + 1)
            conditional_sum = conditional_sum + row[-1:].to(conditional.dtype)
            configs = extend_configurations(configs, row[:-1].view(t.shape[1:]).to(t.dtype), num_samples, gen)
    scores = torch.tensor(totals, dtype=torch.float64, device=device).to(conditional.dtype)
    return Selection(to_output(global_indices(picks, device), np_in), to_output(scores, np_in))
