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

import math

import torch
import torch.distributed as dist

from ..acquisition.bald import check_stochastic, stochastic_keys
from ..acquisition.kmeanspp import FIRST_CHOICES, _wrap
from ..backends import implementation
from ..information import epig_targets, validated_entropies
from ..reference import configurations_entropy, empty_configurations, extend_configurations, gumbel_noise
from ..reference.workspace import compute_dtype
from ..selection import Selection
from ..validation import (check_batch_size, check_embeddings, check_log_probs_form, check_positive_int, scan_log_probs,
                          seed_from, to_output, torch_generator)
from .shards import Shard, ShardError

__all__ = ["ShardError", "epig", "kmeanspp", "select_badge", "select_bald", "select_batchbald",
           "select_conservative_bald", "select_coreset", "select_epig", "select_kbald", "select_stochastic_bald"]


def _log_probs_shard(log_probs, group):
    held = {}

    def check():
        held["t"], held["numpy"] = check_log_probs_form(log_probs)
        return held["t"].shape[0], (*held["t"].shape[1:], str(held["t"].dtype)), held["t"].device

    shard = Shard(check, group)
    return shard, held["t"], held["numpy"]


def _entropies(shard, t, backend):
    """(entropy, conditional entropy) of the local rows, validated on every rank at once."""
    *terms, invalid = implementation("entropies", backend, t.device, strict=False)(t)
    error = None
    if bool(invalid):  # the pass's flag: the scan decides, and names the element
        try:
            scan_log_probs(t, "log_probs", shard.global_rows())
        except ValueError as exc:
            error = exc
    shard.agree(error)
    return terms


def _same_seed(shard, generator):
    """One seed for every rank: rank 0's, so generator=None still draws alike."""
    seed = [seed_from(generator) if shard.rank == 0 else None]
    dist.broadcast_object_list(seed, src=dist.get_global_rank(shard.group, 0) if shard.group is not None else 0,
                               group=shard.group)
    return seed[0]


def _row_message(t, extra):
    """The message that carries a pick: its log-probabilities and per-point values, float64."""
    return lambda i: torch.cat([t[i].reshape(-1).to(torch.float64), *(e[i : i + 1].to(torch.float64) for e in extra)])


def _global(indices, device):
    return torch.tensor(indices, dtype=torch.int64, device=device)


def select_bald(log_probs, batch_size, *, group=None, backend=None):
    """Top-k BALD over the sharded pool (as :func:`kbald_kernels.select_bald`).
    Communication: one all-gather of 24·batch_size bytes a rank."""
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = check_batch_size(batch_size, shard.total)
    entropy, conditional = _entropies(shard, t, backend)
    scores = entropy - conditional
    indices, values = shard.top(scores, size, scores)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))


def select_stochastic_bald(log_probs, batch_size, *, method="power", temperature=1.0, generator=None, group=None,
                           backend=None):
    """Stochastic BALD over the sharded pool (as :func:`kbald_kernels.select_stochastic_bald`):
    Gumbel-top-k keyed by (seed, global index). Communication: one all-gather of
    24·batch_size bytes a rank; "softrank" also gathers every score (8·N bytes)."""
    check_stochastic(method, temperature)
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = check_batch_size(batch_size, shard.total)
    seed = _same_seed(shard, generator)
    entropy, conditional = _entropies(shard, t, backend)
    scores = entropy - conditional
    ranks = _global_ranks(shard, scores) if method == "softrank" else None
    keys = stochastic_keys(scores, method, temperature, seed, shard.global_rows(), ranks)
    indices, values = shard.top(keys, size, scores)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))


def _global_ranks(shard, scores):
    """Each local score's rank (1 = highest, ties to the smaller index) in the whole pool."""
    padded = torch.full((max(shard.sizes),), math.nan, dtype=torch.float64, device=shard.device)
    padded[: shard.size] = scores.to(torch.float64)
    gathered = [torch.empty_like(padded) for _ in range(shard.world)]
    dist.all_gather(gathered, padded, group=shard.group)
    every = torch.cat([g[:n] for g, n in zip(gathered, shard.sizes)])
    ranks = torch.empty_like(every)
    ranks[torch.sort(every, descending=True, stable=True).indices] = torch.arange(
        1, every.shape[0] + 1, dtype=every.dtype, device=every.device)
    return ranks[shard.offset : shard.offset + shard.size]


def epig(log_probs, target_log_probs, *, target_weights=None, group=None, backend=None):
    """EPIG of this rank's pool points about the targets (every rank passes the same
    targets), as :func:`kbald_kernels.epig`: [local N]. No communication beyond the
    shared validation."""
    shard, t, np_in = _log_probs_shard(log_probs, group)
    return to_output(_epig(shard, t, target_log_probs, target_weights, backend), np_in)


def _epig(shard, t, target_log_probs, target_weights, backend):
    targets, weights = epig_targets(t, target_log_probs, target_weights)
    entropy = _entropies(shard, t, backend)[0]
    target_entropy = validated_entropies(targets, backend, strict=False, name="target_log_probs")[0]
    return implementation("epig", backend, t.device, strict=False)(t, targets, (entropy, target_entropy), weights)


def select_epig(log_probs, target_log_probs, batch_size, *, method="top", temperature=1.0, generator=None,
                target_weights=None, group=None, backend=None):
    """EPIG batches over the sharded pool (as :func:`kbald_kernels.select_epig`).
    Communication: one all-gather of 24·batch_size bytes a rank."""
    from ..acquisition.epig import EPIG_METHODS

    if method not in EPIG_METHODS:
        raise ValueError(f"method must be one of {EPIG_METHODS}, got {method!r}")
    if method != "top":
        check_stochastic(method, temperature)
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = check_batch_size(batch_size, shard.total)
    seed = _same_seed(shard, generator) if method != "top" else None
    scores = _epig(shard, t, target_log_probs, target_weights, backend)
    if method == "top":
        keys = scores
    else:
        ranks = _global_ranks(shard, scores) if method == "softrank" else None
        keys = stochastic_keys(scores, method, temperature, seed, shard.global_rows(), ranks)
    indices, values = shard.top(keys, size, scores)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))


def _mutual_information_with_row(t, entropy, row, row_entropy, backend):
    """I[Y_n; Y_row] of every local point with a broadcast pick: a pairwise block of one
    column (on CPU tensors the host twin's pair joint entropy, as the 2-BALD step's)."""
    pairwise = implementation("pairwise_mutual_information", backend, t.device, strict=False)
    return pairwise(t, row.unsqueeze(0), (entropy, row_entropy)).view(-1)


def _take_best(shard, values, excluded):
    """The global pick of the largest ``values`` outside ``excluded`` (global index,
    value), marked excluded on its owner."""
    index, value = shard.best([torch.where(excluded, -math.inf, values)])
    if shard.owner(index) == shard.rank:
        excluded[index - shard.offset] = True
    return index, value


def select_kbald(log_probs, batch_size, *, order=2, group=None, backend=None):
    """Greedy 2-BALD (``order=2``; ``order=1`` is top-k BALD) over the sharded pool, as
    :func:`kbald_kernels.select_kbald`. Communication per pick: one all-gather of
    24 bytes a rank and one broadcast of 8·(K·C + 1) bytes."""
    if order == 1:
        return select_bald(log_probs, batch_size, group=group, backend=backend)
    if order != 2:
        raise ValueError(f"order must be 1 or 2 in kbald_kernels.distributed, got {order!r}")
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = check_batch_size(batch_size, shard.total)
    entropy, conditional = _entropies(shard, t, backend)
    increment = entropy - conditional
    excluded = torch.zeros(shard.size, dtype=torch.bool, device=t.device)
    message = _row_message(t, [entropy])
    picks, values = [], []
    for step in range(size):
        index, value = _take_best(shard, increment, excluded)
        picks.append(index)
        values.append(value)
        if step < size - 1:
            row = shard.broadcast_row(index, message, t[0].numel() + 1)
            pick = row[:-1].view(t.shape[1:]).to(t.dtype)
            increment -= _mutual_information_with_row(t, entropy, pick, row[-1:].to(entropy.dtype), backend)
    scores = torch.tensor(values, dtype=torch.float64, device=t.device).to(increment.dtype).cumsum(0)
    return Selection(to_output(_global(picks, t.device), np_in), to_output(scores, np_in))


def select_conservative_bald(log_probs, batch_size=None, *, threshold, total_correlation_budget=None, group=None,
                             backend=None):
    """The conservative batch over the sharded pool, as
    :func:`kbald_kernels.select_conservative_bald`. Communication per pick: one
    all-gather of 24 bytes a rank and one broadcast of 8·(K·C + 4) bytes."""
    if not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    if total_correlation_budget is not None and not (
            isinstance(total_correlation_budget, (int, float)) and total_correlation_budget >= 0):
        raise ValueError(f"total_correlation_budget must be a number >= 0, got {total_correlation_budget!r}")
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = shard.total if batch_size is None else check_batch_size(batch_size, shard.total)
    entropy, conditional = _entropies(shard, t, backend)
    bald = entropy - conditional
    excluded = torch.zeros(shard.size, dtype=torch.bool, device=t.device)
    total_mi = torch.zeros_like(bald)  # Σ_{s∈S} I[Y_n; Y_s]
    message = _row_message(t, [entropy, bald, total_mi, excluded])
    correlation = torch.zeros(1, dtype=torch.float64, device=t.device)
    picks, values = [], []
    for _ in range(size):
        index, _ = shard.best([torch.where(excluded, -math.inf, bald)])
        row = shard.broadcast_row(index, message, t[0].numel() + 4)
        pick_bald, mi_at_pick = row[-3:-2].to(bald.dtype), row[-2:-1].to(bald.dtype)
        with_pick = correlation + mi_at_pick.to(torch.float64)
        if float(row[-1]) > 0 or total_correlation_budget is not None and float(with_pick) > total_correlation_budget:
            break  # every point is excluded, or the budget is spent: the batch is complete
        correlation = with_pick
        picks.append(index)
        values.append(pick_bald - mi_at_pick)
        if shard.owner(index) == shard.rank:
            excluded[index - shard.offset] = True
        mi = _mutual_information_with_row(t, entropy, row[:-4].view(t.shape[1:]).to(t.dtype),
                                          row[-4:-3].to(entropy.dtype), backend)
        total_mi += mi
        excluded |= mi > threshold
    scores = torch.cat(values).cumsum(0) if values else bald.new_zeros(0)
    return Selection(to_output(_global(picks, t.device), np_in), to_output(scores, np_in))


def select_batchbald(log_probs, batch_size, *, num_samples=10_000, generator=None, group=None, backend=None):
    """Greedy BatchBALD over the sharded pool, as :func:`kbald_kernels.select_batchbald`
    (exact and sampled configurations): every rank extends the configurations
    identically from the broadcast row, the sampling seeded alike (an int seed gives
    the single-process picks; None draws one seed on rank 0). Communication per
    pick: one all-gather of 24 bytes a rank and one broadcast of 8·(K·C + 1) bytes."""
    shard, t, np_in = _log_probs_shard(log_probs, group)
    size = check_batch_size(batch_size, shard.total)
    num_samples = check_positive_int(num_samples, "num_samples")
    device = t.device
    gen = torch_generator(_same_seed(shard, generator), device)
    conditional = _entropies(shard, t, backend)[1]
    accumulate = implementation("accumulate_joint_entropy", backend, device, strict=False)
    configs = empty_configurations(t.shape[1], compute_dtype(t.dtype), device)
    excluded = torch.zeros(shard.size, dtype=torch.bool, device=device)
    conditional_sum = torch.zeros(1, dtype=conditional.dtype, device=device)
    message = _row_message(t, [conditional])
    picks, totals = [], []
    for step in range(size):
        joint = configurations_entropy(configs) + accumulate(configs.weights, configs.alpha, t)
        scores = joint - conditional_sum - conditional
        index, value = _take_best(shard, scores, excluded)
        picks.append(index)
        totals.append(value)
        if step < size - 1:
            row = shard.broadcast_row(index, message, t[0].numel() + 1)
            conditional_sum = conditional_sum + row[-1:].to(conditional.dtype)
            configs = extend_configurations(configs, row[:-1].view(t.shape[1:]).to(t.dtype), num_samples, gen)
    scores = torch.tensor(totals, dtype=torch.float64, device=device).to(conditional.dtype)
    return Selection(to_output(_global(picks, device), np_in), to_output(scores, np_in))


def _ordered(embeddings, k, mode, *, generator, first, labeled, group, name):
    if first not in FIRST_CHOICES:
        raise ValueError(f"first must be one of {FIRST_CHOICES}, got {first!r}")
    held = {}

    def check():
        held["tensors"], held["numpy"] = check_embeddings(embeddings)
        widths = tuple((t.shape[1], str(t.dtype)) for t in held["tensors"])
        return held["tensors"][0].shape[0], widths, held["tensors"][0].device

    shard = Shard(check, group, "embeddings")
    points = _wrap(held["tensors"])
    seed = _same_seed(shard, generator)
    device = shard.device
    selected = torch.zeros(shard.size, dtype=torch.bool, device=device)
    distances = torch.full((shard.size,), math.inf, dtype=points.dtype, device=device)
    widths = [t.shape[1] for t in held["tensors"]]

    def row_of(i):
        return torch.cat([t[i].to(torch.float64) for t in held["tensors"]])

    def center(index):
        row = shard.broadcast_row(index, row_of, sum(widths))
        parts = torch.split(row.to(held["tensors"][0].dtype), widths)
        return _wrap([p.unsqueeze(0) for p in parts])

    def add_center(index):
        if shard.owner(index) == shard.rank:
            selected[index - shard.offset] = True
        torch.minimum(distances, points.squared_distances(center(index), ~selected), out=distances)

    labeled = [] if labeled is None else [int(i) for i in labeled]
    if any(not 0 <= i < shard.total for i in labeled) or len(set(labeled)) != len(labeled):
        raise ValueError(f"labeled must hold distinct global pool indices in [0, {shard.total})")
    for index in labeled:
        add_center(index)
    available = shard.total - len(labeled)
    size = available if k is None else check_batch_size(k, available, name)
    rows = shard.global_rows()
    picks, scores = [], []
    for step in range(size):
        d = torch.where(selected, 0.0, distances).to(torch.float64)
        no_center = torch.isinf(d)
        tier = torch.where(selected, 0, torch.where(no_center, 3, torch.where(d > 0, 2, 1)))
        if step == 0 and first == "max_norm" and not labeled:
            keys = [points.squared_norms().to(torch.float64)]
        else:
            noise = gumbel_noise(seed, step, rows)
            if mode == "argmax":
                key = torch.where(no_center, noise, d)
            else:
                key = torch.where(tier == 2, torch.log(torch.where(tier == 2, d, 1.0)) + noise, noise)
            keys = [tier.to(torch.float64), key]
        index, score = shard.best(keys, payload=distances)
        picks.append(index)
        scores.append(score)
        if step < size - 1:
            add_center(index)
    indices = _global(picks, device)
    return Selection(to_output(indices, held["numpy"]),
                     to_output(torch.tensor(scores, dtype=points.dtype, device=device), held["numpy"]))


def kmeanspp(embeddings, k, *, generator=None, first="random", labeled=None, group=None):
    """k-means++ seeding over the sharded embeddings (dense [N, D] or BADGE factors),
    as :func:`kbald_kernels.kmeanspp`; ``k=None`` orders the whole pool; ``labeled``:
    global pool indices. Communication per pick: one all-gather of 32 bytes a rank
    and one broadcast of the pick's embedding row (8·D bytes; 8·(H + C) factored)."""
    return _ordered(embeddings, k, "sample", generator=generator, first=first, labeled=labeled, group=group,
                    name="k")


def select_badge(embeddings, batch_size, *, generator=None, first="max_norm", labeled=None, group=None):
    """BADGE over the sharded embeddings, as :func:`kbald_kernels.select_badge`."""
    return _ordered(embeddings, batch_size, "sample", generator=generator, first=first, labeled=labeled,
                    group=group, name="batch_size")


def select_coreset(embeddings, batch_size, *, labeled=None, generator=None, first="random", group=None):
    """CORESET k-center greedy over the sharded embeddings, as :func:`kbald_kernels.select_coreset`."""
    return _ordered(embeddings, batch_size, "argmax", generator=generator, first=first, labeled=labeled,
                    group=group, name="batch_size")
