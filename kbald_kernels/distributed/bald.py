"""Top-k and stochastic BALD and the greedy k-BALD family over a sharded pool."""

import math
from typing import NamedTuple

import torch

from ..acquisition.bald import (DynamicTraces, check_conservative, check_dynamic, check_points, check_stochastic,
                                stochastic_keys)
from ..backends import implementation
from ..reference import configurations_entropy, empty_configurations, extend_configurations
from ..reference.workspace import compute_dtype
from ..selection import Selection
from ..validation import check_batch_size, to_output
from .shards import global_indices, log_probs_shard, row_message, validated_entropies


def select_bald(log_probs, batch_size, *, candidates=None, group=None, backend=None):
    """Top-k BALD over the sharded pool (as :func:`kbald_kernels.select_bald`).
    ``candidates`` (every sharded acquisition takes it): global pool indices or a
    mask over the whole pool, the same on every rank; as in one process, only their
    rows are read when every rank's fit the workspace.
    Communication: one all-gather of 24·batch_size bytes a rank."""
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(batch_size, selectable)
    entropy, conditional = validated_entropies(shard, t, backend)
    scores = entropy - conditional
    indices, values = shard.top(scores, size, scores, eligible)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))


def select_stochastic_bald(log_probs, batch_size, *, method="power", temperature=1.0, generator=None,
                           candidates=None, group=None, backend=None):
    """Stochastic BALD over the sharded pool (as :func:`kbald_kernels.select_stochastic_bald`):
    Gumbel-top-k keyed by (seed, global index). Communication: one all-gather of
    24·batch_size bytes a rank; "softrank" also gathers every score (8·N bytes)."""
    check_stochastic(method, temperature)
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(batch_size, selectable)
    seed = shard.same_seed(generator)
    entropy, conditional = validated_entropies(shard, t, backend)
    scores = entropy - conditional
    ranks = shard.global_ranks(scores, eligible) if method == "softrank" else None
    keys = stochastic_keys(scores, method, temperature, seed, shard.global_rows(), ranks)
    indices, values = shard.top(keys, size, scores, eligible)
    return Selection(to_output(indices, np_in), to_output(values.to(scores.dtype).cumsum(0), np_in))


def mutual_information_with_row(t, entropy, row, row_entropy, backend):
    """I[Y_n; Y_row] of every local point with a broadcast pick: a pairwise block of one
    column (on CPU tensors the host twin's pair joint entropy, as the 2-BALD step's)."""
    pairwise = implementation("pairwise_mutual_information", backend, t.device, strict=False)
    return pairwise(t, row.unsqueeze(0), (entropy, row_entropy)).view(-1)


class _Pick(NamedTuple):
    """A pick as its owner broadcast it; the values are [1] tensors (``pair_entropies``:
    H[Y_pick, Y_s] for every earlier pick s), empty where not tracked."""

    log_probs: torch.Tensor  # [K, C]
    entropy: torch.Tensor
    pairwise: torch.Tensor  # its 2-BALD increment when picked
    triple: torch.Tensor  # its triple term when picked
    pair_entropies: torch.Tensor


class _ShardedIncrements:
    """The running k-BALD increments of this rank's points, as the single-process
    loop keeps them, from the picks' rows broadcast by their owners.

    ``pairwise[n] = bald[n] - Σ_{s∈S} I[Y_n; Y_s]``; with triples,
    ``triple[n] = Σ_{s<t∈S} I[Y_n; Y_s; Y_t]``, where H[Y_n, Y_s, Y_t] comes from the
    exact label configurations of the two broadcast rows (the BatchBALD
    accumulation), so no rank needs another's pool. Memory beyond O(N): with
    triples, H[Y_n, Y_s] and the row of every pick s, batch × (N + K·C).
    """

    def __init__(self, shard, t, eligible, backend, track_triples):
        self.shard, self.t, self.backend = shard, t, backend
        self.entropy, conditional = validated_entropies(shard, t, backend)
        self.pairwise = self.entropy - conditional
        self.triple = torch.zeros_like(self.pairwise) if track_triples else None
        self.excluded = shard.unpicked(eligible)
        self.pair_entropies = []  # per pick s: H[Y_n, Y_s] for the local n (triples only)
        self.pick_rows = []  # per pick: (log-probabilities [K, C], H[Y_s]) (triples only)
        self.accumulate = implementation("accumulate_joint_entropy", backend, t.device, strict=False)

    def pick(self, values):
        """The largest ``values`` outside the picks so far over every rank: (global index, value)."""
        return self.shard.take_best(values, self.excluded)

    def receive(self, index):
        """The pick from its owner, as a :class:`_Pick`. One broadcast of
        8·(K·C + 3 + picks so far) bytes (K·C + 2 without triples)."""
        t, width = self.t, self.t.shape[1] * self.t.shape[2]
        extra = [self.entropy, self.pairwise] + ([self.triple, *self.pair_entropies] if self.triple is not None else [])
        row = self.shard.broadcast_row(index, row_message(t, extra), width + len(extra))
        values = row[width:].to(self.entropy.dtype)
        return _Pick(row[:width].view(t.shape[1:]).to(t.dtype), values[0:1], values[1:2], values[2:3], values[3:])

    def update(self, pick):
        """Account for ``pick`` (from :meth:`receive`) in the increments."""
        row, h_row = pick.log_probs, pick.entropy
        h = self.entropy
        mi = mutual_information_with_row(self.t, h, row, h_row, self.backend)
        self.pairwise -= mi
        if self.triple is None:
            return
        pair_with_row = h + h_row - mi
        dtype = compute_dtype(self.t.dtype)
        for (earlier, h_earlier), pair_with_earlier_n, h_pair in zip(self.pick_rows, self.pair_entropies,
                                                                      pick.pair_entropies):
            configs = empty_configurations(self.t.shape[1], dtype, self.t.device)
            for point in (row, earlier):
                configs = extend_configurations(configs, point)
            triple_joint = configurations_entropy(configs) + self.accumulate(configs.weights, configs.alpha, self.t)
            self.triple += (h + h_row + h_earlier - pair_with_row - pair_with_earlier_n - h_pair
                            + triple_joint.to(self.triple.dtype))
        self.pick_rows.append((row, h_row))
        self.pair_entropies.append(pair_with_row)


def select_kbald(log_probs, batch_size, *, order=2, candidates=None, group=None, backend=None):
    """Greedy k-BALD (``order=2`` or 3; ``order=1`` is top-k BALD) over the sharded
    pool, as :func:`kbald_kernels.select_kbald`. Communication per pick: one
    all-gather of 24 bytes a rank and one broadcast of 8·(K·C + 2) bytes
    (order 3: 8·(K·C + 3 + picks so far))."""
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if order == 1:
        return select_bald(log_probs, batch_size, candidates=candidates, group=group, backend=backend)
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(batch_size, selectable)
    state = _ShardedIncrements(shard, t, eligible, backend, track_triples=order == 3)
    picks, values = [], []
    for step in range(size):
        index, value = state.pick(state.pairwise if order == 2 else state.pairwise + state.triple)
        picks.append(index)
        values.append(value)
        if step < size - 1:
            state.update(state.receive(index))
    scores = torch.tensor(values, dtype=torch.float64, device=t.device).to(state.pairwise.dtype).cumsum(0)
    return Selection(to_output(global_indices(picks, t.device), np_in), to_output(scores, np_in))


def select_kbald_dynamic(log_probs, max_batch_size, *, tolerance=0.1, order=2, candidates=None, group=None,
                         backend=None):
    """k-BALD with a dynamic batch size over the sharded pool, as
    :func:`kbald_kernels.select_kbald_dynamic` (a :class:`DynamicSelection`).
    Communication per pick: one all-gather of 24 bytes a rank and one broadcast of
    8·(K·C + 3 + picks so far) bytes."""
    check_dynamic(order, tolerance)
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = check_batch_size(max_batch_size, selectable, "max_batch_size")
    state = _ShardedIncrements(shard, t, eligible, backend, track_triples=True)
    picks, pairwise_at, triple_at = [], [], []  # each pick's increments when picked
    checks = check_points(size)
    for step in range(size):
        index, _ = state.pick(state.pairwise if order == 2 else state.pairwise + state.triple)
        pick = state.receive(index)
        picks.append(index)
        pairwise_at.append(pick.pairwise)
        triple_at.append(pick.triple)
        if step < size - 1:
            state.update(pick)
        if step + 1 in checks:
            traces = DynamicTraces(pairwise_at, triple_at, tolerance)
            if traces.kept <= step:
                break
    return traces.selection(global_indices(picks[: traces.kept], t.device), order, np_in)


def select_conservative_bald(log_probs, batch_size=None, *, threshold, total_correlation_budget=None,
                             candidates=None, group=None, backend=None):
    """The conservative batch over the sharded pool, as
    :func:`kbald_kernels.select_conservative_bald`. Communication per pick: one
    all-gather of 24 bytes a rank and one broadcast of 8·(K·C + 4) bytes."""
    check_conservative(threshold, total_correlation_budget)
    shard, t, np_in, eligible, selectable = log_probs_shard(log_probs, group, candidates)
    size = selectable if batch_size is None else check_batch_size(batch_size, selectable)
    entropy, conditional = validated_entropies(shard, t, backend)
    bald = entropy - conditional
    excluded = shard.unpicked(eligible)
    total_mi = torch.zeros_like(bald)  # Σ_{s∈S} I[Y_n; Y_s]
    message = row_message(t, [entropy, bald, total_mi, excluded])
    correlation = torch.zeros(1, dtype=torch.float64, device=t.device)
    picks, values = [], []
    for _ in range(size):
        index, _ = shard.best([torch.where(excluded, -math.inf, bald)])
        row = shard.broadcast_row(index, message, t.shape[1] * t.shape[2] + 4)
        pick_bald, mi_at_pick = row[-3:-2].to(bald.dtype), row[-2:-1].to(bald.dtype)
        with_pick = correlation + mi_at_pick.to(torch.float64)
        if float(row[-1]) > 0 or total_correlation_budget is not None and float(with_pick) > total_correlation_budget:
            break  # every point is excluded, or the budget is spent: the batch is complete
        correlation = with_pick
        picks.append(index)
        values.append(pick_bald - mi_at_pick)
        if shard.owner(index) == shard.rank:
            excluded[shard.local(index)] = True
        mi = mutual_information_with_row(t, entropy, row[:-4].view(t.shape[1:]).to(t.dtype),
                                         row[-4:-3].to(entropy.dtype), backend)
        total_mi += mi
        excluded |= mi > threshold
    scores = torch.cat(values).cumsum(0) if values else bald.new_zeros(0)
    return Selection(to_output(global_indices(picks, t.device), np_in), to_output(scores, np_in))
