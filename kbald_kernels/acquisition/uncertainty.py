"""Top-k uncertainty sampling, the usual baselines, from the one validating pass;
and the candidate subsets that cheap proxies (or a seeded draw) make for any
acquisition's ``candidates=``."""

from typing import Optional

import torch

from ..candidates import CandidatePool
from ..information import validated_uncertainties
from ..library import (as_selection, candidates_argument, choice_argument, custom_op, fake_batch, fake_indices,
                       fresh, integer_argument, is_numpy, seed_argument, seed_value, tensor_argument, top_order,
                       top_set)
from ..reference import gumbel_noise
from ..validation import check_batch_size, check_log_probs_form, to_output

UNCERTAINTY_SCORES = ("entropy", "least_confidence", "margin", "bald")
PROXY_SCORES = ("random",) + UNCERTAINTY_SCORES


def select_uncertainty(log_probs, batch_size, *, score="entropy", candidates=None, backend=None):
    """The ``batch_size`` most uncertain points by ``score``: predictive ``"entropy"``,
    ``"least_confidence"`` (1 - max_c pbar), ``"margin"`` (pbar_(1) - pbar_(2); the
    smallest are taken) or ``"bald"``; most uncertain first, ties to the smaller index.
    ``candidates``: pool indices or a boolean mask to choose among (default: all).

    Returns ``Selection(indices, scores)`` with each picked point's own score (not a
    running sum: a batch's margins do not add up to anything).
    ``torch.ops.kbald_kernels.select_uncertainty``.
    """
    out = _select_uncertainty_op(tensor_argument(log_probs, "log_probs"), integer_argument(batch_size, "batch_size"),
                                 choice_argument(score, "score", UNCERTAINTY_SCORES), candidates_argument(candidates),
                                 backend)
    return as_selection(out, is_numpy(log_probs))


def check_score(score, scores):
    if score not in scores:
        raise ValueError(f"score must be one of {scores}, got {score!r}")


@custom_op("select_uncertainty", fake_batch)
def _select_uncertainty_op(log_probs: torch.Tensor, batch_size: int, score: str, candidates: Optional[torch.Tensor],
                           backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    check_score(score, UNCERTAINTY_SCORES)
    t, _ = check_log_probs_form(log_probs)
    pool = CandidatePool(t, candidates)
    size = check_batch_size(batch_size, pool.size)
    terms = validated_uncertainties(pool.t, backend, strict=False, rows=pool.t_rows)
    values = pool.per_candidate(uncertainty_values(score, *terms))
    order = top_order(values, size, descending=score != "margin")
    return fresh((pool.from_candidates(order), values[order]), (log_probs, candidates))


def uncertainty_values(score, entropy, conditional, confidence, margin):
    """The per-point values of ``score`` from the uncertainties' pass."""
    return {"entropy": entropy, "least_confidence": confidence, "margin": margin, "bald": entropy - conditional}[score]


def candidate_subset(log_probs, size, *, score="random", generator=None, backend=None):
    """Pool indices of ``size`` candidates, sorted, for any acquisition's ``candidates=``
    (the BADGE acceleration report's random subset and proxy prefilter).

    ``score="random"``: a uniform subset keyed by (seed, pool index), so the same
    ``generator`` (int seed or torch.Generator) gives the same subset; ``log_probs``
    may then be the pool size N instead of predictions. ``"least_confidence"``,
    ``"margin"``, ``"entropy"`` or ``"bald"``: the ``size`` points that proxy ranks
    most uncertain (:func:`select_uncertainty`). Returns int64 indices on the
    predictions' device (numpy for numpy input). ``torch.ops.kbald_kernels.candidate_subset``.
    """
    check_score(score, PROXY_SCORES)
    size = integer_argument(size, "size")
    if score == "random" and isinstance(log_probs, int) and not isinstance(log_probs, bool):
        if log_probs < 1:
            raise ValueError(f"the pool size must be >= 1, got {log_probs}")
        return _random_subset_op(log_probs, size, seed_argument(generator))
    out = _candidate_subset_op(tensor_argument(log_probs, "log_probs"), size, score, seed_argument(generator), backend)
    return to_output(out, is_numpy(log_probs))


@custom_op("candidate_subset", lambda log_probs, size, *args, **kwargs: fake_indices(size, log_probs.device))
def _candidate_subset_op(log_probs: torch.Tensor, size: int, score: str, seed: Optional[int],
                         backend: Optional[str] = None) -> torch.Tensor:
    check_score(score, PROXY_SCORES)
    t, _ = check_log_probs_form(log_probs)
    if score == "random":
        return _random_subset(t.shape[0], size, seed, t.device)
    size = check_batch_size(size, t.shape[0], "size")
    terms = validated_uncertainties(t, backend, strict=False)
    return fresh((top_set(uncertainty_values(score, *terms), size, descending=score != "margin"),), (log_probs,))[0]


@custom_op("random_subset", lambda pool_size, size, seed: fake_indices(size, "cpu"))
def _random_subset_op(pool_size: int, size: int, seed: Optional[int]) -> torch.Tensor:
    """:func:`candidate_subset` of a pool given by its size alone (CPU indices)."""
    return _random_subset(pool_size, size, seed, torch.device("cpu"))


def _random_subset(n, size, seed, device):
    size = check_batch_size(size, n, "size")
    keys = gumbel_noise(seed_value(seed), 0, torch.arange(n, device=device))
    return torch.topk(keys, size).indices.sort().values
