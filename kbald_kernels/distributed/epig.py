"""EPIG scores and batches over a sharded pool."""

from ..acquisition.bald import check_stochastic, stochastic_keys
from ..acquisition.epig import EPIG_METHODS
from ..backends import implementation
from ..information import epig_targets, validated_entropies as validated_target_entropies
from ..selection import Selection
from ..validation import check_batch_size, to_output
from .shards import log_probs_shard, validated_entropies


def epig(log_probs, target_log_probs, *, target_weights=None, group=None, backend=None):
    """EPIG of this rank's pool points about the targets (every rank passes the same
    targets), as :func:`kbald_kernels.epig`: [local N]. No communication beyond the
    shared validation."""
    shard, t, np_in, _, _ = log_probs_shard(log_probs, group)
    return to_output(_epig(shard, t, target_log_probs, target_weights, backend), np_in)


def _epig(shard, t, target_log_probs, target_weights, backend):
    targets, weights = epig_targets(t, target_log_probs, target_weights)
    entropy = validated_entropies(shard, t, backend)[0]
    target_entropy = validated_target_entropies(targets, backend, strict=False, name="target_log_probs")[0]
    return implementation("epig", backend, t.device, strict=False)(t, targets, (entropy, target_entropy), weights)


def select_epig(log_probs, target_log_probs, batch_size, *, method="top", temperature=1.0, generator=None,
                target_weights=None, candidates=None, group=None, backend=None):
    """EPIG batches over the sharded pool (as :func:`kbald_kernels.select_epig`).
    Communication: one all-gather of 24·batch_size bytes a rank."""
    if method not in EPIG_METHODS:
        raise ValueError(f"method must be one of {EPIG_METHODS}, got {method!r}")
    if method != "top":
        check_stochastic(method, temperature)
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(batch_size, selectable)
    seed = shard.same_seed(generator) if method != "top" else None
    scores = _epig(shard, t, target_log_probs, target_weights, backend)
    if method == "top":
        keys = scores
    else:
        ranks = shard.global_ranks(scores, eligible) if method == "softrank" else None
        keys = stochastic_keys(scores, method, temperature, seed, shard.global_rows(), ranks)
    indices, values = shard.top(keys, size, scores, eligible)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))
