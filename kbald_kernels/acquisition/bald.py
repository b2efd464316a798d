"""Top-k BALD, stochastic BALD, and the greedy k-BALD family (Kirsch 2023):
2-BALD, 3-BALD, a dynamic batch size, and conservative batches."""

import math
from functools import partial
from typing import Any, NamedTuple, Optional

import torch

from .. import kernel_ops
from ..candidates import CandidatePool
from ..information import validated_entropies
from ..library import (as_selection, candidates_argument, choice_argument, custom_op, fake_batch, fresh,
                       integer_argument, is_numpy, number_argument, seed_argument, seed_value, tensor_argument,
                       top_order)
from ..reference import argmax_unselected, gumbel_noise
from ..selection import Selection
from ..validation import check_batch_size, check_log_probs_form, to_output

STOCHASTIC_METHODS = ("power", "softmax", "softrank")


def select_bald(log_probs, batch_size, *, candidates=None, backend=None):
    """The ``batch_size`` points with the highest BALD score, best first (ties: smaller index).

    ``candidates`` (every acquisition takes it): pool indices or a boolean mask over
    the pool to choose among (default: all); indices returned are pool indices.
    Returns ``Selection(indices, scores)``; scores are the cumulative BALD sum, the
    batch's value when points are treated as independent. ``torch.ops.kbald_kernels.select_bald``.
    """
    return as_selection(_select_bald_op(tensor_argument(log_probs, "log_probs"),
                                        integer_argument(batch_size, "batch_size"),
                                        candidates_argument(candidates), backend), is_numpy(log_probs))


@custom_op("select_bald", fake_batch)
def _select_bald_op(log_probs: torch.Tensor, batch_size: int, candidates: Optional[torch.Tensor],
                    backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    pool = _candidate_pool(log_probs, candidates)
    size = check_batch_size(batch_size, pool.size)
    entropy, conditional = validated_entropies(pool.t, backend, strict=False, rows=pool.t_rows)
    values = pool.per_candidate(entropy - conditional)
    order = top_order(values, size)
    return fresh((pool.from_candidates(order), values[order].cumsum(0)), (log_probs, candidates))


def _candidate_pool(log_probs, candidates):
    return CandidatePool(check_log_probs_form(log_probs)[0], candidates)


def select_stochastic_bald(log_probs, batch_size, *, method="power", temperature=1.0, generator=None,
                           candidates=None, backend=None):
    """Stochastic BALD (Kirsch et al. 2023): sample a batch without replacement with
    probability ∝ ``bald^(1/T)`` ("power"), ``exp(bald/T)`` ("softmax") or
    ``rank^(-1/T)`` ("softrank", rank 1 = highest BALD).

    Sampling is Gumbel-top-k over the counter-based stream keyed by the seed, so the
    same ``generator`` gives the same batch. For "power", BALD values that rounding
    left below 0 count as 0. Scores are the cumulative BALD sum in pick order.
    ``torch.ops.kbald_kernels.select_stochastic_bald``.
    """
    out = _select_stochastic_bald_op(tensor_argument(log_probs, "log_probs"),
                                     integer_argument(batch_size, "batch_size"),
                                     choice_argument(method, "method", STOCHASTIC_METHODS),
                                     number_argument(temperature, "temperature"), seed_argument(generator),
                                     candidates_argument(candidates), backend)
    return as_selection(out, is_numpy(log_probs))


@custom_op("select_stochastic_bald", fake_batch)
def _select_stochastic_bald_op(log_probs: torch.Tensor, batch_size: int, method: str, temperature: float,
                               seed: Optional[int], candidates: Optional[torch.Tensor],
                               backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    check_stochastic(method, temperature)
    pool = _candidate_pool(log_probs, candidates)
    size = check_batch_size(batch_size, pool.size)
    seed = seed_value(seed)
    entropy, conditional = validated_entropies(pool.t, backend, strict=False, rows=pool.t_rows)
    scores = pool.per_candidate(entropy - conditional)
    order = stochastic_order(scores, size, method, temperature, seed, pool.rows)
    return fresh((pool.from_candidates(order), scores[order].cumsum(0)), (log_probs, candidates))


def check_stochastic(method, temperature):
    if method not in STOCHASTIC_METHODS:
        raise ValueError(f"method must be one of {STOCHASTIC_METHODS}, got {method!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")


def stochastic_order(scores, size, method, temperature, seed, pool_indices=None):
    """``size`` positions of ``scores`` drawn without replacement with probability ∝
    score^(1/T) ("power"; scores below 0 count as 0), exp(score/T) ("softmax") or
    rank^(-1/T) ("softrank"): Gumbel-top-k keyed by (seed, step 0, pool index), the
    pool index of each score being ``pool_indices`` (default: its position)."""
    keys = stochastic_keys(scores, method, temperature, seed, pool_indices)
    return top_order(keys, size)


def stochastic_keys(scores, method, temperature, seed, pool_indices=None, ranks=None):
    """The Gumbel-top-k keys of :func:`stochastic_order`, float64; zero-weight points
    (score <= 0 under "power") get -inf, so they come last, in index order.
    ``ranks``: for "softrank", each score's rank in the whole pool when ``scores``
    is part of it (default: ranks among ``scores``)."""
    s = scores.to(torch.float64)
    if method == "power":
        log_weight = torch.log(s.clamp_min(0)) / temperature
    elif method == "softmax":
        log_weight = s / temperature
    else:
        if ranks is None:
            ranks = torch.empty_like(s)
            ranks[torch.sort(s, descending=True, stable=True).indices] = torch.arange(
                1, s.shape[0] + 1, dtype=s.dtype, device=s.device)
        log_weight = -torch.log(ranks.to(s.dtype)) / temperature
    if pool_indices is None:
        pool_indices = torch.arange(s.shape[0], device=s.device)
    keys = log_weight + gumbel_noise(seed, 0, pool_indices)
    return torch.where(torch.isneginf(log_weight), -math.inf, keys)


class _KBALDIncrements:
    """Running k-BALD increments of every pool point given the picks so far, kept on
    the pool's device: a fixed number of launches per pick and nothing read back.

    ``pairwise[i] = bald[i] - Σ_{s∈S} I[Y_i; Y_s]`` and, when tracking triples,
    ``triple[i] = Σ_{s<t∈S} I[Y_i; Y_s; Y_t]``, so the 3-BALD increment is their sum.
    """

    def __init__(self, pool, backend, track_triples, capacity):
        t = self.t = pool.t
        device = t.device
        self.entropy, conditional = validated_entropies(t, backend, strict=False, rows=pool.t_rows)
        self.pairwise = self.entropy - conditional
        self.triple = torch.zeros_like(self.pairwise) if track_triples else None
        self.mutual_information_with = partial(kernel_ops.mutual_information_with_pick, backend=backend,
                                               strict=False)
        self.add_triples = partial(kernel_ops.add_triple_interactions, backend=backend, strict=False)
        self.selected = pool.unpicked()
        # The picks in order, on the device; the first ``count`` are made.
        self.picks = torch.full((capacity,), -1, dtype=torch.int64, device=device)
        self.count = 0
        # Row j: H[Y_n, Y_t] for the j-th pick t (3-BALD); allocated once for the whole batch.
        self.pair_entropies = torch.empty((capacity if track_triples else 0, t.shape[0]),
                                          dtype=self.entropy.dtype, device=device)

    def pick(self, values, excluded=None):
        """Take the point with the largest ``values`` outside ``excluded`` (default:
        the picks so far) as the next pick; returns it as an int64 [1] device tensor."""
        pick = argmax_unselected(values, self.selected if excluded is None else excluded)
        self.selected.index_fill_(0, pick, True)
        self.picks[self.count : self.count + 1] = pick
        self.count += 1
        return pick

    def update(self, pick):
        """Account for the newest pick in the increments; returns I[Y_n; Y_pick] for every n."""
        h = self.entropy
        mi_with_pick = self.mutual_information_with(self.t, h, pick)
        self.pairwise -= mi_with_pick
        if self.triple is not None:
            newest = self.count - 1
            torch.sub(h + h.index_select(0, pick), mi_with_pick, out=self.pair_entropies[newest])
            self.add_triples(self.t, h, self.pair_entropies[: newest + 1], self.picks[: newest + 1], self.triple)
        return mi_with_pick


def select_kbald(log_probs, batch_size, *, order=2, candidates=None, backend=None):
    """Greedy k-BALD: BatchBALD's joint mutual information by inclusion–exclusion.

    The increment of candidate i given the selected set S is
    ``bald[i] - Σ_{s∈S} I[Y_i; Y_s]`` (``order=2``) ``+ Σ_{s<t∈S} I[Y_i; Y_s; Y_t]``
    (``order=3``); ``order=1`` is top-k BALD. Each step takes the largest increment
    (ties: smaller index). Scores are the cumulative k-BALD value of the batch.
    ``candidates``: as in :func:`select_bald`. ``torch.ops.kbald_kernels.select_kbald``.

    The entropies' pass validates the input; the pool is never copied. Memory beyond
    O(N): ``order=3`` keeps H[Y_n, Y_s] for every pick s, batch_size × N.
    """
    out = _select_kbald_op(tensor_argument(log_probs, "log_probs"), integer_argument(batch_size, "batch_size"),
                           integer_argument(order, "order", lambda v: check_order(v, (1, 2, 3))),
                           candidates_argument(candidates), backend)
    return as_selection(out, is_numpy(log_probs))


@custom_op("select_kbald", fake_batch)
def _select_kbald_op(log_probs: torch.Tensor, batch_size: int, order: int, candidates: Optional[torch.Tensor],
                     backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    check_order(order, (1, 2, 3))
    if order == 1:
        return _select_bald_op(log_probs, batch_size, candidates, backend)
    pool = _candidate_pool(log_probs, candidates)
    size = check_batch_size(batch_size, pool.size)
    if order == 2:
        t = pool.t
        entropy, conditional = validated_entropies(t, backend, strict=False, rows=pool.t_rows)
        increment = entropy - conditional
        indices, increments = kernel_ops.kbald_pairwise_steps(t, entropy, increment, pool.unpicked(), None, size,
                                                              backend, False)
        return fresh((pool.from_rows(indices), increments.cumsum(0)), (log_probs, candidates))
    state = _KBALDIncrements(pool, backend, track_triples=True, capacity=size)
    increments = []
    for step in range(size):
        increment = state.pairwise + state.triple
        pick = state.pick(increment)
        increments.append(increment.index_select(0, pick))
        if step < size - 1:
            state.update(pick)
    return fresh((pool.from_rows(state.picks), torch.cat(increments).cumsum(0)), (log_probs, candidates))


def check_points(size):
    """The steps after which a loop with a stop test on the device reads it: after
    1, 2, 4, 8, … picks and the last, so a call reads O(log batch) values and runs
    at most twice the picks it keeps."""
    points, step = set(), 1
    while step < size:
        points.add(step)
        step *= 2
    return points | {size}


class DynamicSelection(NamedTuple):
    """``indices`` and ``scores`` as in :class:`Selection` (scores: the cumulative
    estimate of the order that drove the picks). ``pairwise_scores`` and
    ``triple_scores`` are the cumulative 2-BALD and 3-BALD values after every pick
    considered, including, when the batch stopped early, the pick that diverged."""

    indices: Any
    scores: Any
    pairwise_scores: Any
    triple_scores: Any


def check_order(order, orders):
    if order not in orders:
        names = ", ".join(map(str, orders[:-1])) + f" or {orders[-1]}"
        raise ValueError(f"order must be {names}, got {order!r}")


def check_dynamic(order, tolerance):
    check_order(order, (2, 3))
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")


def check_conservative(threshold, total_correlation_budget):
    if not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    if total_correlation_budget is not None and not (
            isinstance(total_correlation_budget, (int, float)) and total_correlation_budget >= 0):
        raise ValueError(f"total_correlation_budget must be a number >= 0, got {total_correlation_budget!r}")


class DynamicTraces:
    """The cumulative 2-BALD and 3-BALD estimates of the picks so far (each pick's
    increments when picked: lists of [1] tensors) and ``kept``: the picks before the
    first whose estimates differ by more than ``tolerance`` relative to 3-BALD, or
    all of them. One read of the device."""

    def __init__(self, pairwise_at, triple_at, tolerance):
        pairwise = torch.cat(pairwise_at)
        self.pairwise = pairwise.cumsum(0)
        self.triple = (pairwise + torch.cat(triple_at)).cumsum(0)
        divergence = (self.triple - self.pairwise).abs() / self.triple.abs().clamp_min(1e-30)
        diverged = divergence.double() > tolerance  # the tolerance as given, not rounded to float32
        diverged[0] = False
        self.kept = int(torch.where(diverged.any(), diverged.to(torch.uint8).argmax(), len(pairwise_at)))

    def selection(self, indices, order, np_in):
        """The :class:`DynamicSelection` of the kept ``indices``, scored by the ``order`` that drove them."""
        traces = self.pairwise[: self.kept + 1], self.triple[: self.kept + 1]
        scores = (traces[0] if order == 2 else traces[1])[: self.kept]
        return DynamicSelection(*(to_output(x, np_in) for x in (indices, scores, *traces)))


def select_kbald_dynamic(log_probs, max_batch_size, *, tolerance=0.1, order=2, candidates=None, backend=None):
    """k-BALD with a dynamic batch size: greedy picks (by 2-BALD, or 3-BALD with
    ``order=3``) until the 2-BALD and 3-BALD estimates of the batch differ by more
    than ``tolerance`` relative to the 3-BALD value, or ``max_batch_size`` is reached.

    The batch returned stops before the pick that broke the tolerance (it always
    holds at least the first pick, where both estimates equal BALD). ``candidates``:
    as in :func:`select_bald`.
    """
    check_dynamic(order, tolerance)
    pool, np_in = _candidate_pool(log_probs, candidates), is_numpy(log_probs)
    size = check_batch_size(max_batch_size, pool.size, "max_batch_size")
    state = _KBALDIncrements(pool, backend, track_triples=True, capacity=size)
    pairwise_at, triple_at = [], []  # each pick's increments when picked
    checks = check_points(size)
    for step in range(size):
        pick = state.pick(state.pairwise if order == 2 else state.pairwise + state.triple)
        pairwise_at.append(state.pairwise.index_select(0, pick))
        triple_at.append(state.triple.index_select(0, pick))
        if step < size - 1:
            state.update(pick)
        if step + 1 in checks:
            traces = DynamicTraces(pairwise_at, triple_at, tolerance)
            if traces.kept <= step:
                break
    return traces.selection(pool.from_rows(state.picks[: traces.kept]), order, np_in)


def select_conservative_bald(log_probs, batch_size=None, *, threshold, total_correlation_budget=None,
                             candidates=None, backend=None):
    """Conservative batch: take the highest-BALD point, drop every pool point whose
    pairwise mutual information with it exceeds ``threshold``, repeat.

    Stops when no candidate is left, the batch holds ``batch_size`` points (None:
    no limit), or adding the next point would take the batch's total correlation,
    approximated to second order as Σ_{pairs} I[Y_s; Y_t], past
    ``total_correlation_budget``. Scores are the cumulative 2-BALD value.
    ``candidates``: as in :func:`select_bald`; only candidates are taken or dropped.
    """
    check_conservative(threshold, total_correlation_budget)
    pool, np_in = _candidate_pool(log_probs, candidates), is_numpy(log_probs)
    size = pool.size if batch_size is None else check_batch_size(batch_size, pool.size)
    state = _KBALDIncrements(pool, backend, track_triples=False, capacity=size)
    bald_scores = state.pairwise.clone()
    t = pool.t
    excluded = pool.unpicked()
    total_mi = torch.zeros_like(bald_scores)  # Σ_{s∈S} I[Y_n; Y_s]
    correlation = torch.zeros(1, dtype=torch.float64, device=t.device)
    kept = torch.ones(1, dtype=torch.bool, device=t.device)
    picked, values = [], []  # per step: whether the pick is kept (monotone), its 2-BALD increment
    checks = check_points(size)
    for step in range(size):
        pick = state.pick(bald_scores, excluded)
        kept = kept & ~excluded.index_select(0, pick)  # false once every point is excluded
        mi_at_pick = total_mi.index_select(0, pick)
        with_pick = correlation + mi_at_pick.to(torch.float64)
        if total_correlation_budget is not None:
            kept = kept & (with_pick <= total_correlation_budget)
        correlation = torch.where(kept, with_pick, correlation)
        picked.append(kept)
        values.append(bald_scores.index_select(0, pick) - mi_at_pick)
        excluded.index_fill_(0, pick, True)
        mi_with_pick = state.update(pick)
        total_mi += mi_with_pick
        excluded |= mi_with_pick > threshold
        if step + 1 in checks and not bool(kept):
            break
    count = int(torch.cat(picked).sum())
    scores = torch.cat(values)[:count].cumsum(0)
    return Selection(to_output(pool.from_rows(state.picks[:count]), np_in), to_output(scores, np_in))
